"""The options threshold Paillier and CKKS take (``secagg simulate`` / ``secagg cost``
flags), with their ranges, and what a session actually uses (the registry spec's
``describe``).

Role: neither side: data for :mod:`secagg.protocols.threshold_he.spec` (which imports this
module when it builds a spec) and :mod:`secagg.protocols.options`.

``--degree`` is the committee size (1 to n; threshold Paillier at most its backend's
``MAX_HOLDERS``), ``--threshold`` the committee's t (1 to the committee size); CKKS sums stay
exact below 2^CKKS_MAX_SUM_BITS, which bounds the bits per value by the number of clients.
The HE backends' own limits (``MAX_HOLDERS``, ``MIN_KEY_BITS``, gmpy2) are read only when a
threshold-Paillier option is checked, so that the CKKS table loads on a core install.
"""

from __future__ import annotations

from typing import Any

from secagg.protocols.options import COMMON_OPTIONS, Context, Option, Rule
from secagg.protocols.threshold_he.config import (
    CKKS_MAX_SUM_BITS,
    DECRYPTION_MODES,
    DEFAULT_COMMITTEE,
    DEFAULT_DECRYPTION,
)
from secagg.protocols.threshold_he.spec import SIMULATION_KEY_BITS, ThresholdHESimulation

__all__ = ["describe", "options", "refusals"]


def _committee(context: Context) -> int:
    """The committee size: the given degree, else min(DEFAULT_COMMITTEE, n)."""
    if context.get("degree") is not None:
        return int(context["degree"])
    return min(DEFAULT_COMMITTEE, int(context["clients"]))


def _paillier_max_holders(context: Context) -> int:
    from secagg.he.threshold_paillier import MAX_HOLDERS  # gmpy2: the 'he' extra

    return min(int(context["clients"]), MAX_HOLDERS)


def _min_key_bits(context: Context) -> int:
    from secagg.he.paillier import MIN_KEY_BITS  # gmpy2: the 'he' extra

    return MIN_KEY_BITS


def options(*, paillier: bool) -> dict[str, Option]:
    """The option table of threshold Paillier (``paillier``) or CKKS."""
    table = dict(COMMON_OPTIONS)
    if not paillier:
        table["bits"] = Option(
            "each value is in Z_(2^bits)",
            int,
            1,
            lambda c: CKKS_MAX_SUM_BITS - (int(c["clients"]) - 1).bit_length(),
            why=f"a sum of {{clients}} values stays exact below 2^{CKKS_MAX_SUM_BITS}",
        )
    table["degree"] = Option(
        f"committee size (default: min({DEFAULT_COMMITTEE}, n))",
        int,
        1,
        _paillier_max_holders if paillier else (lambda c: int(c["clients"])),
        why="the committee is drawn from the {clients} clients",
    )
    table["threshold"] = Option(
        "committee threshold t (default: a majority)"
        if paillier
        else "identical decryptions the server needs",
        int,
        1,
        _committee,
        why=lambda c: f"at most the committee size, {_committee(c)}"
        + ("" if c.get("degree") is not None else f" = min({DEFAULT_COMMITTEE}, {{clients}})"),
        default=None if paillier else 1,
    )
    if paillier:
        table["key_bits"] = Option(
            "Paillier key size in bits",
            int,
            _min_key_bits,
            2**16,
            rules=(Rule(lambda value, c: int(value) % 2 == 0, "an even number"),),
            default=SIMULATION_KEY_BITS,
        )
        table["decryption"] = Option(
            "committee decryption: every member decrypts all (full) or t/l (balanced)",
            str,
            choices=DECRYPTION_MODES,
            default=DEFAULT_DECRYPTION,
        )
    else:
        table["ciphertext_bytes"] = Option(
            "mean size of one CKKS ciphertext (default: measured for the default parameters)",
            float,
            2**16,
            2**31 - 1,
            cost_only=True,
        )
    return table


_REFUSALS = {
    "active": "the threshold-HE protocols have no active (malicious-server) mode",
    "corrupt_fraction": "it feeds the SecAgg+ parameter finder",
    }


def refusals(*, paillier: bool) -> dict[str, str]:
    """Why the protocol does not take the options of the other protocols."""
    if paillier:
        return _REFUSALS | {"ciphertext_bytes": "its ciphertexts are Paillier's, sized by the key"}
    return _REFUSALS | {
        "key_bits": "it has no Paillier key",
        "decryption": "CKKS members decrypt the whole aggregate with the single key",
    }


def describe(simulation: ThresholdHESimulation) -> dict[str, Any]:
    """Every parameter the session uses: clients, length, bits, threshold, the committee
    (``degree`` is its size), the backend, and the key size and decryption mode of threshold
    Paillier or the ring degree of CKKS."""
    config = simulation.config
    described: dict[str, Any] = {
        "clients": config.n,
        "dim": config.vector_length,
        "bits": config.bits,
        "threshold": config.threshold,
        "degree": len(config.committee),
        "committee": list(config.committee),
        "min_clients": config.min_clients,
        "backend": config.backend,
    }
    if config.public_key is not None:
        described["key_bits"] = int(config.public_key.paillier.n.bit_length())
        described["decryption"] = config.decryption
    if config.ckks is not None:
        described["poly_modulus_degree"] = config.ckks.parameters.poly_modulus_degree
    return described
