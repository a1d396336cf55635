"""One measured protocol run of the cost suite, beside its model, prediction and floor.

A :class:`Setting` names a protocol and its size; :func:`run_setting` runs it through the
in-process simulator (every message encoded, counted and decoded; every party's compute
timed per round), then puts beside the measured figures, in the same record:

* the analytic model's bytes (:func:`secagg.cost.bonawitz.bonawitz_costs`,
  :mod:`secagg.cost.threshold_he`) with the run's exact dropout counts;
* the predicted seconds (:mod:`secagg.cost.timing`: op counts times unit costs
  calibrated just before the run, on the same cores);
* the floor: AES-128-CTR keystream ``update_into`` a reused buffer plus one uint32 add per
  mask vector the party handles, and one X25519 + HKDF per key agreement, measured in this
  run (``benchmarks.bench_protocol.floor_per_mask`` / ``floor_per_agreement``);
* optionally the peak memory of every party (tracemalloc; the run is then slower).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import tracemalloc
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgpack

from benchmarks.bench_he import _safe_primes
from benchmarks.bench_protocol import floor_per_agreement, floor_per_mask
from benchmarks.metering import MeteredParty
from secagg.cost.bonawitz import bonawitz_costs
from secagg.cost.threshold_he import ckks_costs, threshold_paillier_costs
from secagg.cost.timing import (
    UnitCosts,
    calibrate,
    calibrate_ckks,
    calibrate_paillier,
    predict_seconds,
)
from secagg.protocols.base import SERVER_ID
from secagg.protocols.registry import ProtocolSpec, SimulationParams, get_protocol
from secagg.protocols.threshold_he import setup_threshold_paillier
from secagg.protocols.threshold_he.messages import ROUND_DECRYPTION, ROUND_ENCRYPTED_INPUT
from secagg.protocols.threshold_he.spec import (
    ThresholdHESimulation,
    ckks_spec,
    threshold_paillier_spec,
)
from secagg.sim.inputs import seeded_inputs
from secagg.sim.simulator import DropoutSchedule, SimulationResult, simulate

MASKING = ("bonawitz", "secagg+")
HE = ("threshold-paillier", "ckks")
PROTOCOLS = MASKING + HE


@dataclass(frozen=True)
class Setting:
    """One protocol at one size: ``n`` clients, ``m`` values of ``bits`` bits, a fraction
    ``dropout`` of the clients lost at the protocol's dropout round (after ShareKeys for
    the masking protocols, before the input for HE), a committee for HE."""

    protocol: str
    n: int
    m: int
    dropout: float = 0.0
    bits: int = 32
    committee: int = 5
    threshold: int | None = None

    @property
    def key(self) -> str:
        return f"{self.protocol} n={self.n} m={self.m} drop={self.dropout:g}"


class Floors:
    """The floor's unit costs, measured once per vector length in this run."""

    def __init__(self) -> None:
        self._mask: dict[int, float] = {}
        self._agreement: float | None = None

    def per_mask(self, m: int) -> float:
        if m not in self._mask:
            self._mask[m] = floor_per_mask(m)
        return self._mask[m]

    def per_agreement(self) -> float:
        if self._agreement is None:
            self._agreement = floor_per_agreement()
        return self._agreement

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_mask_seconds": {str(m): s for m, s in sorted(self._mask.items())},
            "per_agreement_seconds": self._agreement,
        }


@cache
def _paillier_keys(n: int, m: int, bits: int, committee: int, threshold: int | None) -> Any:
    """Dealer setup with the committed 2048-bit benchmark primes (test data)."""
    clients = list(range(1, n + 1))
    config, shares = setup_threshold_paillier(
        clients,
        bits=bits,
        vector_length=m,
        committee=clients[:committee],
        threshold=threshold,
        key_bits=2048,
        safe_primes=_safe_primes(),
    )
    return ThresholdHESimulation(config, shares)


def _config_and_spec(setting: Setting) -> tuple[Any, ProtocolSpec]:
    params = SimulationParams(
        clients=setting.n,
        dim=setting.m,
        bits=setting.bits,
        threshold=setting.threshold,
        degree=setting.committee if setting.protocol in HE else None,
        dropout_fraction=setting.dropout,
    )
    if setting.protocol == "threshold-paillier":
        config = _paillier_keys(
            setting.n, setting.m, setting.bits, min(setting.committee, setting.n), setting.threshold
        )
        return config, threshold_paillier_spec()
    if setting.protocol == "ckks":
        return ThresholdHESimulation.ckks(params), ckks_spec()
    spec = get_protocol(setting.protocol)
    return spec.make_config(params), spec


class _BlobSizes:
    """CKKS ciphertext sizes read from the messages the transport decodes: SEAL compresses
    them, so the model takes their measured mean (uploads and the aggregate apart)."""

    def __init__(self) -> None:
        self.uploads: list[int] = []
        self.aggregate: list[int] = []

    def wrap(self, spec: ProtocolSpec) -> ProtocolSpec:
        def decode(data: bytes, sender: int) -> Any:
            message = spec.decode(data, sender)
            payload = getattr(message, "payload", None)
            upload = sender != SERVER_ID and message.round_name == ROUND_ENCRYPTED_INPUT
            aggregate = sender == SERVER_ID and message.round_name == ROUND_DECRYPTION
            if isinstance(payload, bytes) and (upload or aggregate):
                chunks = msgpack.unpackb(payload, raw=False).get("chunks", [])
                target = self.aggregate if sender == SERVER_ID else self.uploads
                target.extend(len(chunk) for chunk in chunks)
            return message

        return dataclasses.replace(spec, decode=decode)


def _model(setting: Setting, config: Any, result: SimulationResult, blobs: _BlobSizes) -> Any:
    dropped = len(result.dropped)
    if setting.protocol in MASKING:
        k = config.n - 1 if config.is_complete else config.degree
        return bonawitz_costs(
            config.n,
            setting.m,
            setting.bits,
            config.threshold,
            None if config.is_complete else k,
            dropped,
        )
    he = config.config
    committee_dropped = len(set(result.dropped) & set(he.committee))
    # Both HE models take the same session shape: n, m, bits, committee, t, dropouts.
    shape = (he.n, setting.m, setting.bits, len(he.committee), he.threshold, dropped)
    if setting.protocol == "threshold-paillier":
        return threshold_paillier_costs(
            *shape,
            nsquare_bits=int(he.public_key.paillier.nsquare.bit_length()),
            committee_dropouts=committee_dropped,
        )
    return ckks_costs(
        *shape,
        ciphertext_bytes=statistics.fmean(blobs.uploads),
        aggregate_ciphertext_bytes=statistics.fmean(blobs.aggregate),
        committee_dropouts=committee_dropped,
    )


def _units(setting: Setting, config: Any, model: Any) -> UnitCosts:
    if setting.protocol in MASKING:
        k = config.n - 1 if config.is_complete else config.degree
        return calibrate(
            m=setting.m,
            bits=setting.bits,
            holders=k + 1,
            threshold=config.threshold,
            reconstructions=min(config.n, 256),
        )
    if setting.protocol == "threshold-paillier":
        return calibrate_paillier(
            config.config.public_key, ciphertexts=int(model["parameters"]["ciphertexts"])
        )
    return calibrate_ckks(config.config.ckks.parameters, m=setting.m, bits=setting.bits)


def floors_for(
    protocol: str, model: Any, per_mask: float, per_agreement: float
) -> dict[str, float]:
    """The floor of the rounds Flower's steps also do: a client's masked input (its masks
    and key agreements) and the server's unmasking; for HE, one mask per client upload
    (a one-time pad) and one per upload the server adds."""
    if protocol in HE:
        alive = int(model["parameters"]["n"]) - int(model["parameters"]["dropouts"])
        return {"client_seconds": per_mask, "server_seconds": alive * per_mask}
    client = model["rounds"]["masked_input"]["client_ops"]
    server = model["rounds"]["unmasking"]["server_ops"]
    return {
        f"{side}_seconds": ops.get("prg_expansions", 0) * per_mask
        + ops.get("key_agreements", 0) * per_agreement
        for side, ops in (("client", client), ("server", server))
    }


def _floors(setting: Setting, model: Any, floors: Floors) -> dict[str, float]:
    per_mask = floors.per_mask(setting.m)
    per_agreement = 0.0 if setting.protocol in HE else floors.per_agreement()
    return floors_for(setting.protocol, model, per_mask, per_agreement)


def _rounds(result: SimulationResult, model: Any, predicted: Any) -> list[dict[str, Any]]:
    rows = []
    for summary in result.costs.summaries():
        name = summary.round_name
        modelled = model["rounds"].get(name, {})
        guess = predicted["rounds"].get(name, {})
        rows.append(
            {
                "round": name,
                "clients": summary.clients,
                "server_seconds": summary.server.seconds,
                "client_seconds_mean": summary.client_seconds_mean,
                "client_seconds_max": summary.client_seconds_max,
                "server_bytes_up": summary.server.bytes_up,
                "server_bytes_down": summary.server.bytes_down,
                "client_bytes_up_mean": summary.client_bytes_up_mean,
                "client_bytes_down_mean": summary.client_bytes_down_mean,
                "model_bytes_up": modelled.get("server_bytes_up"),
                "model_bytes_down": modelled.get("server_bytes_down"),
                "predicted_server_seconds": guess.get("server"),
                "predicted_client_seconds": guess.get("client"),
            }
        )
    return rows


def _bytes_exact(rounds: list[dict[str, Any]]) -> tuple[bool, float]:
    """(every round's bytes equal the model's to 1e-6 B, largest relative error)."""
    exact, worst = True, 0.0
    for row in rounds:
        for side in ("up", "down"):
            measured, modelled = row[f"server_bytes_{side}"], row[f"model_bytes_{side}"]
            if modelled is None:
                exact = False
                continue
            exact &= abs(measured - modelled) < 1e-6
            if measured:
                worst = max(worst, abs(measured - modelled) / measured)
    return exact, worst


def run_setting(
    setting: Setting, floors: Floors, *, progress: bool = False, memory: bool = False
) -> dict[str, Any]:
    """Run ``setting`` once (dropouts chosen by seed 0) and return its JSON-ready record.

    Raises SystemExit if the protocol's result is not the plaintext sum of the included
    clients (a benchmark of a wrong result is worthless).
    """
    config, spec = _config_and_spec(setting)
    blobs = _BlobSizes()
    run_spec = blobs.wrap(spec) if setting.protocol == "ckks" else spec
    meters: dict[int, MeteredParty] = {}
    if memory:
        make_server, make_client = run_spec.make_server, run_spec.make_client

        def metered_server(cfg: Any) -> Any:
            meters[SERVER_ID] = MeteredParty(make_server(cfg))
            return meters[SERVER_ID]

        def metered_client(cfg: Any, cid: int, source: Any) -> Any:
            meters[cid] = MeteredParty(make_client(cfg, cid, source))
            return meters[cid]

        run_spec = dataclasses.replace(
            run_spec, make_server=metered_server, make_client=metered_client
        )
    ids = list(spec.client_ids(config))
    schedule = DropoutSchedule.from_rate(ids, setting.dropout, spec.dropout_round, seed=0)
    inputs = seeded_inputs(0, setting.m, setting.bits)
    if memory:
        tracemalloc.start()
    try:
        start = time.perf_counter()
        result = simulate(config, inputs, dropouts=schedule, progress=progress, protocol=run_spec)
        wall = time.perf_counter() - start
    finally:
        if memory:
            tracemalloc.stop()
    if not result.matches:
        raise SystemExit(f"{setting.key}: the result is not the plaintext sum ({result!r})")
    model = _model(setting, config, result, blobs)
    predicted = predict_seconds(model, _units(setting, config, model))
    rounds = _rounds(result, model, predicted)
    exact, worst = _bytes_exact(rounds)
    included = sorted(result.aggregate.included)
    client_totals = [result.costs.party_total(c) for c in included]
    params = model["parameters"]
    record: dict[str, Any] = {
        "key": setting.key,
        "protocol": setting.protocol,
        "n": setting.n,
        "m": setting.m,
        "bits": setting.bits,
        "dropout_rate": setting.dropout,
        "dropouts": len(result.dropped),
        "degree": params.get("degree"),
        "threshold": params["threshold"],
        "committee": params.get("committee"),
        "wall_seconds": wall,
        "matches": result.matches,
        "rounds": rounds,
        "server_seconds": result.costs.party_total(SERVER_ID).seconds,
        "client_seconds_mean": statistics.fmean(c.seconds for c in client_totals),
        "client_seconds_max": max(c.seconds for c in client_totals),
        "client_bytes_up_mean": statistics.fmean(c.bytes_up for c in client_totals),
        "client_bytes_down_mean": statistics.fmean(c.bytes_down for c in client_totals),
        "model_totals": model["totals"],
        "model_parameters": params,
        "bytes_exact": exact,
        # Not exact with dropouts: the model is then an expectation over dropout sets (id
        # sizes >= 128, list headers); without dropouts any gap is a model error.
        "bytes_check": "exact" if exact else ("expectation" if result.dropped else "mismatch"),
        "bytes_max_relative_error": worst,
        "predicted_client_seconds": predicted["client"],
        "predicted_server_seconds": predicted["server"],
        "floor": _floors(setting, model, floors),
    }
    if setting.protocol == "ckks":
        record["ckks_ciphertext_bytes"] = {
            "uploads_mean": statistics.fmean(blobs.uploads),
            "aggregate_mean": statistics.fmean(blobs.aggregate),
            "nominal": ckks_costs(2, 1, 1)["parameters"]["ciphertext_bytes"],
        }
    if memory:
        client_peaks = sorted(meters[c].peak for c in meters if c != SERVER_ID)
        record["memory"] = {
            "server_peak_bytes": meters[SERVER_ID].peak,
            "client_peak_bytes_max": client_peaks[-1],
            "client_peak_bytes_median": client_peaks[len(client_peaks) // 2],
            "under_tracemalloc": True,
        }
    return record
