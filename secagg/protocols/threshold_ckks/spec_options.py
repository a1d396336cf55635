"""The options threshold CKKS takes (``secagg simulate`` / ``secagg cost`` flags), with their
ranges, and what a session actually uses (the registry spec's ``describe``).

Role: neither side: data for :mod:`secagg.protocols.threshold_ckks.spec` and
:mod:`secagg.protocols.options`.

Ranges are those :class:`~secagg.protocols.threshold_ckks.config.ThresholdCkksConfig`
accepts, stated before anything is built. ``--degree`` is the committee size: at most the
number of clients, and at most the largest committee whose noise budget fits ``n``
summands in some ring the HE standard allows (about 16 members: the smudging noise grows
with ``committee!``); ``--threshold`` is the committee's t, 1 to the committee size;
``--bits`` is at most the widest plaintext the parameters chosen for this committee and
``n`` clients take (:data:`~secagg.protocols.threshold_ckks.config.MAX_BITS`, and
``bits + ceil(log2 n) + 3 <= 64`` for the ciphertext body). Both limits are found by asking
:func:`~secagg.protocols.threshold_ckks.config.choose_parameters` itself (a bisection, each
answer cached), so that the table can never disagree with the config.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from secagg.errors import ConfigurationError
from secagg.he.threshold_ckks import MAX_COMMITTEE
from secagg.protocols.options import COMMON_OPTIONS, Context, Option
from secagg.protocols.threshold_ckks.config import (
    DEFAULT_COMMITTEE,
    MAX_BITS,
    ThresholdCkksConfig,
    choose_parameters,
)

__all__ = ["REFUSALS", "describe", "max_bits", "max_committee", "options"]


@lru_cache(maxsize=512)
def _fits(committee: int, clients: int, bits: int) -> bool:
    try:
        choose_parameters(committee, clients, bits)
    except ConfigurationError:
        return False
    return True


def _last_true(low: int, high: int, holds: Callable[[int], bool]) -> int:
    """The largest x in ``low..high`` with ``holds(x)`` (monotone: true then false), or
    ``low - 1`` when none."""
    if low > high or not holds(low):
        return low - 1
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if holds(middle) else (low, middle - 1)
    return low


@lru_cache(maxsize=256)
def max_committee(clients: int) -> int:
    """The largest committee threshold CKKS takes for ``clients`` clients: at most
    ``clients`` and :data:`~secagg.he.threshold_ckks.MAX_COMMITTEE`, and parameters must fit
    its noise for ``clients`` summands of 1-bit values."""
    return _last_true(1, min(clients, MAX_COMMITTEE), lambda m: _fits(m, clients, 1))


@lru_cache(maxsize=256)
def max_bits(committee: int, clients: int) -> int:
    """The widest values (bits) a committee of ``committee`` members takes for ``clients``
    summands (0 when the committee fits none)."""
    body = 64 - 3 - (clients - 1).bit_length()  # bits + ceil(log2 n) + 3 <= 64
    return _last_true(1, min(MAX_BITS, body), lambda b: _fits(committee, clients, b))


def _committee(context: Context) -> int:
    """The committee size: the given degree, else min(DEFAULT_COMMITTEE, n)."""
    if context.get("degree") is not None:
        return int(context["degree"])
    return min(DEFAULT_COMMITTEE, int(context["clients"]))


def _degree_why(context: Context) -> str:
    n = int(context["clients"])
    if max_committee(n) >= n:
        return "the committee is drawn from the {clients} clients"
    return f"the largest committee whose noise budget fits {n} summands"


def _committee_text(context: Context) -> str:
    given = context.get("degree") is not None
    return f"{_committee(context)}" + ("" if given else f" = min({DEFAULT_COMMITTEE}, {{clients}})")


def options() -> dict[str, Option]:
    """The option table of threshold CKKS, in checking order: the committee before the
    threshold and the bits, whose ranges depend on it."""
    common = COMMON_OPTIONS
    return {
        "clients": common["clients"],
        "dim": common["dim"],
        "degree": Option(
            f"committee size (default: min({DEFAULT_COMMITTEE}, n))",
            int,
            1,
            lambda c: max_committee(int(c["clients"])),
            why=_degree_why,
        ),
        "threshold": Option(
            "committee threshold t (default: a majority)",
            int,
            1,
            _committee,
            why=lambda c: f"at most the committee size, {_committee_text(c)}",
        ),
        "bits": Option(
            "each value is in Z_(2^bits)",
            int,
            1,
            lambda c: max_bits(_committee(c), int(c["clients"])),
            why=lambda c: f"the widest that fits a committee of {_committee_text(c)} and "
            f"{int(c['clients'])} summands: bits + ceil(log2 {{clients}}) + 3 <= 64, and the "
            "noise budget",
        ),
        "dropout_fraction": common["dropout_fraction"],
    }


REFUSALS = {
    "active": "threshold CKKS has no active (malicious-server) mode",
    "corrupt_fraction": "it feeds the SecAgg+ parameter finder",
    "key_bits": "it has no Paillier key",
    "decryption": "each committee member sends one decryption share per ciphertext, once",
    "ciphertext_bytes": "its ciphertext sizes follow exactly from the chosen parameters",
}
"""Why threshold CKKS does not take the options of the other protocols."""


def describe(config: ThresholdCkksConfig) -> dict[str, Any]:
    """Every parameter the session uses: clients, length, bits, threshold, the committee
    (``degree`` is its size), the fewest summands a member decrypts, and the scheme's
    ring degree and number of limbs."""
    if not isinstance(config, ThresholdCkksConfig):
        raise ConfigurationError("not a ThresholdCkksConfig")
    scheme = config.scheme
    return {
        "clients": config.n,
        "dim": config.vector_length,
        "bits": config.bits,
        "threshold": config.threshold,
        "degree": len(config.committee),
        "committee": list(config.committee),
        "min_clients": config.min_clients,
        "poly_modulus_degree": scheme.degree,
        "limbs": scheme.limbs,
    }
