"""Distributed differential privacy and compression for secure aggregation.

Each client rotates, clips, scales and rounds its update onto an integer grid, adds a small
share of exact discrete noise (Skellam or discrete Gaussian, from the CSPRNG) and reduces it
mod ``2^bits``; the masking protocol sums the encodings; the server maps the modular sum
back, rotates it back and rescales. Only the sum carries the full noise, and the accountant
states the ``(epsilon, delta)`` spent, round by round, given who was actually in the sum.

Typical use::

    config = DistributedDP(epsilon=10, delta=1e-5, rounds=1000, sampling_rate=0.01,
                           bits=16, clip=1.0, expected_clients=100)
    plan = config.plan(dim)                      # frozen, JSON-ready (plan.to_dict())
    ledger = PrivacyLedger(plan)
    # each client, each round (round_seed: a public 32-byte seed per round):
    x = encode(update, plan, round_seed)         # uint32 values in [0, 2^bits)
    # server, after the masking protocol summed the included clients' x mod 2^bits:
    mean, report = decode(total, plan, round_seed, included, ledger=ledger)
    report.epsilon_spent

Modules: :mod:`~secagg.dp.config` (settings), :mod:`~secagg.dp.plan` (the plan),
:mod:`~secagg.dp.planning` (scale and noise solver), :mod:`~secagg.dp.pipeline`
(encode/decode), :mod:`~secagg.dp.ledger` (per-round privacy), :mod:`~secagg.dp.accounting`
(RDP bounds), :mod:`~secagg.dp.rotation`, :mod:`~secagg.dp.quantization`,
:mod:`~secagg.dp.sampling` (exact noise), :mod:`~secagg.dp.tables`, :mod:`~secagg.dp.pmf`,
:mod:`~secagg.dp.cks`, :mod:`~secagg.dp.randomness`. Accounting needs the ``dp-accounting``
package (``secagg[dp]``); encoding does not.
"""

from __future__ import annotations

from secagg.dp.cks import CksDiscreteGaussian
from secagg.dp.config import Compression, DistributedDP
from secagg.dp.errors import NonFiniteUpdateError
from secagg.dp.ledger import PrivacyLedger, RoundPrivacy
from secagg.dp.pipeline import decode, encode, prepare, quantize
from secagg.dp.plan import DPPlan
from secagg.dp.randomness import RandomSource
from secagg.dp.sampling import exact_variance, noise_sampler, sample_noise

__all__ = [
    "CksDiscreteGaussian",
    "Compression",
    "DPPlan",
    "DistributedDP",
    "NonFiniteUpdateError",
    "PrivacyLedger",
    "RandomSource",
    "RoundPrivacy",
    "decode",
    "encode",
    "exact_variance",
    "noise_sampler",
    "prepare",
    "quantize",
    "sample_noise",
]
