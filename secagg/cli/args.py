"""The argument sets ``secagg simulate``, ``secagg cost`` and ``secagg bench`` share.

One definition each of the flags several subcommands take (the protocol, the size of a
session, the protocol variants, the progress switch) and of the exit codes. The variants
(``--active``, ``--decryption``) apply to the protocols whose registry spec names them
(:attr:`~secagg.protocols.registry.ProtocolSpec.variants`); :func:`variants_of` reads them
from the parsed arguments, :func:`check_variants` refuses one a protocol does not take.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from secagg.cost.estimate import variant_refusal
from secagg.errors import ConfigurationError
from secagg.protocols.registry import ProtocolSpec, get_protocol, protocol_names

__all__ = [
    "DECRYPTION_MODES",
    "EXIT_ABORTED",
    "EXIT_BAD_PARAMETERS",
    "EXIT_MISMATCH",
    "EXIT_OK",
    "VARIANT_FLAGS",
    "add_no_progress",
    "add_protocol",
    "add_size",
    "add_variants",
    "check_variants",
    "variants_of",
]

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_PARAMETERS = 2
EXIT_ABORTED = 3

DEFAULT_PROTOCOL = "secagg+"
DECRYPTION_MODES = ("full", "balanced")
"""The committee decryption modes ``--decryption`` offers (the spec checks the value)."""

VARIANT_FLAGS = {"active": "--active", "decryption": "--decryption"}
"""Registry variant name -> the flag that sets it."""


def add_protocol(parser: argparse.ArgumentParser, choices: Sequence[str]) -> None:
    """``--protocol`` (default secagg+) among ``choices``."""
    parser.add_argument("--protocol", choices=tuple(choices), default=DEFAULT_PROTOCOL)


def add_size(parser: argparse.ArgumentParser) -> None:
    """The size of a session: ``--clients --dim --bits --dropout --threshold --degree``."""
    parser.add_argument("--clients", type=int, default=100, help="number of clients n")
    parser.add_argument("--dim", type=int, default=1000, help="vector length m")
    parser.add_argument(
        "--bits", type=int, default=32, help="modulus 2^bits (HE: bits of a value)"
    )
    parser.add_argument(
        "--dropout", type=float, default=0.0, help="fraction of clients dropping"
    )
    parser.add_argument(
        "--threshold", type=int, default=None, help="Shamir threshold t, or the HE committee's"
    )
    parser.add_argument(
        "--degree", type=int, default=None, help="SecAgg+ neighbours k, or HE committee size"
    )


def add_variants(parser: argparse.ArgumentParser) -> None:
    """The protocol variants: ``--active`` and ``--decryption``."""
    parser.add_argument(
        "--active",
        action="store_true",
        help="active-adversary mode, for the protocols that have one (simulate makes the "
        "Ed25519 identities in-process)",
    )
    parser.add_argument(
        "--decryption",
        choices=DECRYPTION_MODES,
        default=None,
        help="threshold Paillier: every member decrypts all (full, default) or t/l (balanced)",
    )


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: never show a progress bar."""
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def variants_of(args: argparse.Namespace) -> dict[str, Any]:
    """The variants the flags ask for (registry name -> value); unset flags are left out."""
    variants: dict[str, Any] = {}
    if args.active:
        variants["active"] = True
    if args.decryption is not None:
        variants["decryption"] = args.decryption
    return variants


def check_variants(spec: ProtocolSpec, variants: dict[str, Any]) -> None:
    """ConfigurationError when no registered protocol takes all of ``variants`` together,
    or when ``spec`` does not take one of them (the message names who does)."""
    if len(variants) > 1 and not any(
        set(variants) <= set(get_protocol(name).variants) for name in protocol_names()
    ):
        flags = " and ".join(VARIANT_FLAGS[name] for name in variants)
        raise ConfigurationError(f"{flags} apply to different protocols")
    for name in variants:
        if name not in spec.variants:
            raise variant_refusal(VARIANT_FLAGS[name], name)
