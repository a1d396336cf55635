"""One measured protocol run of the cost suite, beside its model, prediction and floor.

A :class:`Setting` names a registered protocol and its size; :func:`run_setting` builds
the configuration through the protocol's registry spec and runs it through the in-process
simulator (every message encoded, counted and decoded; every party's compute timed per
round), then puts beside the measured figures, in the same record, what the protocol's
cost model (:class:`~secagg.cost.model.CostModel`, named by the spec) says:

* the analytic model's bytes with the run's exact dropouts (``CostModel.of_run``);
* the predicted seconds (:mod:`secagg.cost.timing`: op counts times unit costs
  calibrated just before the run, on the same cores);
* the floor: AES-128-CTR keystream ``update_into`` a reused buffer plus one uint32 add per
  mask vector the party handles, and one X25519 + HKDF per key agreement, measured in this
  run (:mod:`secagg.bench.floors`; how many of each: ``CostModel.floor_work``);
* optionally the peak memory of every party (tracemalloc; the run is then slower).

Nothing here knows a protocol by name: a spec that takes ``safe_primes`` gets the
committed benchmark primes (:mod:`secagg.bench.primes`), a cost model with an observer
sees the messages as they are decoded.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

from secagg.bench.floors import floor_per_agreement, floor_per_mask
from secagg.bench.metering import MeteredParty
from secagg.bench.primes import safe_primes_2048
from secagg.cost.estimate import cost_model_of
from secagg.cost.model import FloorWork, MessageObserver, RunFacts
from secagg.cost.timing import predict_seconds
from secagg.protocols.base import SERVER_ID
from secagg.protocols.registry import ProtocolSpec, SimulationParams, get_protocol
from secagg.sim.inputs import seeded_inputs
from secagg.sim.simulator import DropoutSchedule, SimulationResult, simulate

__all__ = ["Floors", "Setting", "run_setting"]


@dataclass(frozen=True)
class Setting:
    """One protocol at one size: ``n`` clients, ``m`` values of ``bits`` bits, a fraction
    ``dropout`` of the clients lost at the protocol's dropout round (after ShareKeys for
    the masking protocols, before the input for HE); ``degree`` and ``threshold`` as
    ``secagg simulate`` takes them (None: the spec's defaults, e.g. the parameter finder's
    k and t, or a committee of min(5, n))."""

    protocol: str
    n: int
    m: int
    dropout: float = 0.0
    bits: int = 32
    degree: int | None = None
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

    def seconds(self, work: dict[str, FloorWork], m: int) -> dict[str, float]:
        """The floor seconds of each party's ``work`` on vectors of length ``m``
        (``{"client_seconds": ..., "server_seconds": ...}``)."""
        per_mask = self.per_mask(m)
        needs_agreements = any(w.agreements for w in work.values())
        per_agreement = self.per_agreement() if needs_agreements else 0.0
        return {
            f"{side}_seconds": w.masks * per_mask + w.agreements * per_agreement
            for side, w in work.items()
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_mask_seconds": {str(m): s for m, s in sorted(self._mask.items())},
            "per_agreement_seconds": self._agreement,
        }


def _config_and_spec(setting: Setting) -> tuple[Any, ProtocolSpec]:
    """The setting's configuration, built by its spec (with the committed primes when the
    spec takes them: dealing fresh 2048-bit safe primes would dwarf the run)."""
    spec = get_protocol(setting.protocol)
    params = SimulationParams(
        clients=setting.n,
        dim=setting.m,
        bits=setting.bits,
        threshold=setting.threshold,
        degree=setting.degree,
        dropout_fraction=setting.dropout,
    )
    variants = {"safe_primes": safe_primes_2048()} if "safe_primes" in spec.variants else {}
    return spec.make_config(params, **variants), spec


def _observed(spec: ProtocolSpec, observer: MessageObserver) -> ProtocolSpec:
    """``spec`` whose decoder shows every message to ``observer``."""
    decode = spec.decode

    def observed_decode(data: bytes, sender: int) -> Any:
        message = decode(data, sender)
        observer.see(message, sender)
        return message

    return dataclasses.replace(spec, decode=observed_decode)


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
    cost = cost_model_of(spec)
    observer = cost.observer() if cost.observer is not None else None
    run_spec = spec if observer is None else _observed(spec, observer)
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
    model = cost.of_run(config, RunFacts(frozenset(result.dropped), observer))
    predicted = predict_seconds(model, cost.calibrate(model, config))
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
        "floor": floors.seconds(cost.floor_work(model), setting.m),
    }
    if observer is not None:
        record.update(observer.record())
    if memory:
        client_peaks = sorted(meters[c].peak for c in meters if c != SERVER_ID)
        record["memory"] = {
            "server_peak_bytes": meters[SERVER_ID].peak,
            "client_peak_bytes_max": client_peaks[-1],
            "client_peak_bytes_median": client_peaks[len(client_peaks) // 2],
            "under_tracemalloc": True,
        }
    return record
