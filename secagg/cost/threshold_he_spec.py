"""The cost side of the ``threshold-paillier`` and ``ckks`` registry entries.

:data:`THRESHOLD_PAILLIER` and :data:`CKKS` are the :class:`~secagg.cost.model.CostModel`
the specs of :mod:`secagg.protocols.threshold_he.spec` name. Their estimates take the
simulation's defaults: a committee of ``min(5, n)`` members (``--degree``), a majority
threshold for threshold Paillier and 1 for CKKS. A CKKS run's model needs the mean size of
SEAL's compressed ciphertexts, which only the messages carry: :class:`CiphertextSizes`
reads them as the transport decodes.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

import msgpack

from secagg.cost.bonawitz_spec import QUICK_MAX_LENGTH
from secagg.cost.model import CostModel, CostParams, FloorWork, RunFacts
from secagg.cost.threshold_he import ckks_costs, threshold_paillier_costs
from secagg.cost.timing import UnitCosts, calibrate_ckks, calibrate_paillier
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.threshold_he.config import DEFAULT_DECRYPTION
from secagg.protocols.threshold_he.messages import ROUND_DECRYPTION, ROUND_ENCRYPTED_INPUT
from secagg.protocols.threshold_he.spec import ThresholdHESimulation

__all__ = ["CKKS", "THRESHOLD_PAILLIER", "CiphertextSizes"]

CKKS_DEFAULT_THRESHOLD = 1
"""The decryptions the CKKS server needs by default (as the simulation's setup)."""


def _shape(simulation: ThresholdHESimulation, facts: RunFacts) -> tuple[int, ...]:
    """The session shape both HE models take: n, m, bits, committee, t, dropouts."""
    he = simulation.config
    return (he.n, he.vector_length, he.bits, len(he.committee), he.threshold, len(facts.dropped))


def _committee_dropouts(simulation: ThresholdHESimulation, facts: RunFacts) -> int:
    return len(facts.dropped & set(simulation.config.committee))


def _floor_work(model: Mapping[str, Any]) -> dict[str, FloorWork]:
    """One mask per vector the party handles (a one-time pad): a client's upload, and each
    surviving upload the server adds."""
    params = model["parameters"]
    return {
        "client": FloorWork(1),
        "server": FloorWork(int(params["n"]) - int(params["dropouts"])),
    }


# --- threshold Paillier ---------------------------------------------------------------------


def _paillier_estimate(params: CostParams) -> dict[str, Any]:
    return threshold_paillier_costs(
        params.clients,
        params.dim,
        params.bits,
        params.degree,
        params.threshold,
        params.dropouts,
        key_bits=params.key_bits,
        decryption=params.decryption or DEFAULT_DECRYPTION,
    )


def _paillier_of_run(simulation: ThresholdHESimulation, facts: RunFacts) -> dict[str, Any]:
    he = simulation.config
    assert he.public_key is not None  # a threshold-Paillier config always has one
    paillier = he.public_key.paillier
    return threshold_paillier_costs(
        *_shape(simulation, facts),
        key_bits=int(paillier.n.bit_length()),
        guard_bits=he.guard_bits,
        nsquare_bits=int(paillier.nsquare.bit_length()),
        committee_dropouts=_committee_dropouts(simulation, facts),
        decryption=he.decryption,
    )


def _paillier_calibrate(model: Mapping[str, Any], config: object) -> UnitCosts:
    """Unit costs for the model's key size and ciphertext count: the run's own key, or a
    throwaway key dealt now (unit costs depend on the sizes only)."""
    params = model["parameters"]
    if isinstance(config, ThresholdHESimulation) and config.config.public_key is not None:
        public = config.config.public_key
    else:
        from secagg.he.threshold_paillier import deal_threshold_keys

        public, _ = deal_threshold_keys(
            params["key_bits"], threshold=params["threshold"], holders=params["committee"]
        )
    return calibrate_paillier(public, ciphertexts=int(params["ciphertexts"]))


THRESHOLD_PAILLIER = CostModel(
    estimate=_paillier_estimate,
    of_run=_paillier_of_run,
    calibrate=_paillier_calibrate,
    floor_work=_floor_work,
)


# --- CKKS -----------------------------------------------------------------------------------


class CiphertextSizes:
    """Sizes of the CKKS ciphertexts the transport decodes: every client upload, and the
    summed ciphertexts the server sends the committee (SEAL compresses them, so the model
    takes their measured means)."""

    def __init__(self) -> None:
        self.uploads: list[int] = []
        self.aggregate: list[int] = []

    def see(self, message: Message, sender: int) -> None:
        """Record the chunk sizes of an upload or of the aggregate; ignore the rest."""
        payload = getattr(message, "payload", None)
        upload = sender != SERVER_ID and message.round_name == ROUND_ENCRYPTED_INPUT
        aggregate = sender == SERVER_ID and message.round_name == ROUND_DECRYPTION
        if not isinstance(payload, bytes) or not (upload or aggregate):
            return
        record = msgpack.unpackb(payload, raw=False)
        chunks = record.get("chunks", []) if isinstance(record, dict) else []
        target = self.aggregate if aggregate else self.uploads
        target.extend(len(chunk) for chunk in chunks if isinstance(chunk, bytes))

    def figures(self) -> dict[str, float]:
        """The model's keyword arguments: the mean upload and aggregate ciphertext sizes."""
        return {
            "ciphertext_bytes": statistics.fmean(self.uploads),
            "aggregate_ciphertext_bytes": statistics.fmean(self.aggregate),
        }

    def record(self) -> dict[str, Any]:
        """The sizes beside the model's nominal figure, for a report."""
        return {
            "ckks_ciphertext_bytes": {
                "uploads_mean": statistics.fmean(self.uploads),
                "aggregate_mean": statistics.fmean(self.aggregate),
                "nominal": ckks_costs(2, 1, 1)["parameters"]["ciphertext_bytes"],
            }
        }


def _ckks_estimate(params: CostParams) -> dict[str, Any]:
    threshold = CKKS_DEFAULT_THRESHOLD if params.threshold is None else params.threshold
    return ckks_costs(
        params.clients,
        params.dim,
        params.bits,
        params.degree,
        threshold,
        params.dropouts,
        ciphertext_bytes=params.ciphertext_bytes,
    )


def _ckks_of_run(simulation: ThresholdHESimulation, facts: RunFacts) -> dict[str, Any]:
    he = simulation.config
    assert he.ckks is not None  # a CKKS config always has its context
    figures = facts.observer.figures() if facts.observer is not None else {}
    return ckks_costs(
        *_shape(simulation, facts),
        poly_modulus_degree=he.ckks.parameters.poly_modulus_degree,
        coeff_mod_bit_sizes=tuple(he.ckks.parameters.coeff_mod_bit_sizes),
        committee_dropouts=_committee_dropouts(simulation, facts),
        ciphertext_bytes=figures.get("ciphertext_bytes"),
        aggregate_ciphertext_bytes=figures.get("aggregate_ciphertext_bytes"),
    )


def _ckks_calibrate(model: Mapping[str, Any], config: object) -> UnitCosts:
    """Unit costs for the run's CKKS parameters (or the model's), vectors of the model's
    length (capped when no run is at hand)."""
    params = model["parameters"]
    if isinstance(config, ThresholdHESimulation) and config.config.ckks is not None:
        parameters = config.config.ckks.parameters
        m = int(params["m"])
    else:
        from secagg.he.ckks import CkksParameters

        parameters = CkksParameters(
            params["poly_modulus_degree"], tuple(params["coeff_mod_bit_sizes"])
        )
        m = min(int(params["m"]), QUICK_MAX_LENGTH)
    return calibrate_ckks(parameters, m=m, bits=params["bits"])


CKKS = CostModel(
    estimate=_ckks_estimate,
    of_run=_ckks_of_run,
    calibrate=_ckks_calibrate,
    floor_work=_floor_work,
    observer=CiphertextSizes,
)
