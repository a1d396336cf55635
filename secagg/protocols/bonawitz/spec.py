"""Registry entries of the built-in protocols: Bonawitz et al. (CCS'17) and SecAgg+.

Role: neither side: how the registry builds configs, clients and servers of this family.

Both run the same :class:`~secagg.protocols.bonawitz.client.Client` and
:class:`~secagg.protocols.bonawitz.server.Server` on a :class:`ProtocolConfig`; they differ by the
graph: complete for ``bonawitz``, a sparse Harary graph whose ``(k, t)`` come from the
parameter finder for ``secagg+``.

Semi-honest mode by default. Active mode needs Ed25519 identities registered out of band;
:class:`ActiveSimulation` plays that registry in-process (every client's signing key beside
the public config, which alone goes to the server), as ``secagg simulate --active`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from secagg.errors import ConfigurationError
from secagg.protocols.base import Message
from secagg.protocols.bonawitz.client import Client
from secagg.protocols.bonawitz.config import (
    ACTIVE,
    SEMI_HONEST,
    Mode,
    ProtocolConfig,
    default_threshold,
)
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT, ROUND_NAMES, decode_message
from secagg.protocols.bonawitz.params import find_parameters
from secagg.protocols.bonawitz.server import Server
from secagg.protocols.options import COMMON_OPTIONS, Context, Option, Rule
from secagg.protocols.registry import InputSource, ProtocolSpec, SimulationParams, client_ids_of
from secagg.signing import SigningKey

__all__ = ["ActiveSimulation", "bonawitz_spec", "graph_parameters", "secagg_plus_spec"]


def graph_parameters(
    params: SimulationParams, *, sparse: bool, mode: Mode = SEMI_HONEST
) -> tuple[int | None, int]:
    """The ``(degree, threshold)`` a simulation of ``params`` uses (degree ``None``: the
    complete graph), the single source of the defaults for ``secagg simulate`` and
    ``secagg cost``.

    Complete graph (``sparse`` false): the threshold defaults to the mode's minimum
    (:func:`~secagg.protocols.bonawitz.config.default_threshold`: ``floor(n/2) + 1`` semi-honest,
    ``floor(2n/3) + 1`` active). SecAgg+: ``k`` and ``t`` come from the parameter finder for
    ``params.corrupt_fraction`` and the larger of ``params.dropout_fraction`` and 5 % (its
    semi-malicious bounds in active mode); a degree given without a threshold gets
    ``default_threshold`` of that graph: a majority of the ``k + 1`` holders of a
    neighbourhood (``2t > k + 1``, what active SecAgg+ requires), or ``t > 2n/3`` for a
    complete graph in active mode. Raises ConfigurationError for fewer than two clients or
    parameters the finder refuses.
    """
    n = len(client_ids_of(params))
    degree, threshold = params.degree, params.threshold
    if not sparse:
        return None, threshold if threshold is not None else default_threshold(n, mode)
    if degree is not None and threshold is None:
        holders = min(degree, n - 1) + 1
        threshold = default_threshold(holders, mode, complete=holders == n)
    if degree is None or threshold is None:
        found = find_parameters(
            n,
            corrupt_fraction=params.corrupt_fraction,
            dropout_fraction=max(params.dropout_fraction, 0.05),
            semi_malicious=mode == ACTIVE,
        )
        degree = found.degree if degree is None else degree
        threshold = found.threshold if threshold is None else threshold
    return degree, threshold


# -- options: what `secagg simulate` / `secagg cost` may set, and their ranges ----------

_FINDER_BUDGET = 0.9  # find_parameters: corrupt + dropout (semi-honest) or corrupt + 2 dropout


def _mode(context: Context) -> Mode:
    return ACTIVE if context.get("active") else SEMI_HONEST


def _finder_dropout(context: Context) -> float:
    return max(float(context["dropout_fraction"]), 0.05)  # as graph_parameters


def _dropout_high(context: Context) -> float:
    if context.get("degree") is not None:
        return 1.0
    room = _FINDER_BUDGET - float(context["corrupt_fraction"])
    return max(room / 2 if context.get("active") else room, 0.0)


def _corrupt_high(context: Context) -> float:
    weight = 2 if context.get("active") else 1
    return max(_FINDER_BUDGET - weight * _finder_dropout(context), 0.0)


def _graph_degree(context: Context) -> int:
    """k as the session will have it: the given degree, else the parameter finder's."""
    if context.get("degree") is not None:
        return int(context["degree"])
    n = int(context["clients"])
    params = SimulationParams(
        clients=n,
        dim=1,
        bits=1,
        dropout_fraction=float(context["dropout_fraction"]),
        corrupt_fraction=float(context["corrupt_fraction"]),
    )
    degree, _ = graph_parameters(params, sparse=True, mode=_mode(context))
    return int(degree if degree is not None else n - 1)


def _threshold_bounds(context: Context, *, sparse: bool) -> tuple[int, int]:
    n, mode = int(context["clients"]), _mode(context)
    holders = min(_graph_degree(context), n - 1) + 1 if sparse else n
    if holders == n:
        return default_threshold(n, mode), n
    return default_threshold(holders, mode, complete=False) if mode == ACTIVE else 2, holders


def _threshold_why(context: Context, *, sparse: bool) -> str:
    if not sparse or (context.get("degree") is not None and
                      int(context["degree"]) >= int(context["clients"]) - 1):
        return "t > n/2 on the complete graph, t > 2n/3 with {active}"
    source = "{degree}" if context.get("degree") is not None else "the parameter finder's"
    k = _graph_degree(context)
    return f"at most the k + 1 = {k + 1} holders of a neighbourhood, k = {source} {k}; " \
        "2t > k + 1 with {active}"


def _options(*, sparse: bool) -> dict[str, Option]:
    table = dict(COMMON_OPTIONS)
    if sparse:
        table["clients"] = Option(
            "number of clients n",
            int,
            lambda c: 2 if c.get("degree") is not None else 3,
            COMMON_OPTIONS["clients"].high,
            why="the parameter finder needs 3 unless {degree} is given",
        )
        table["dropout_fraction"] = Option(
            "fraction of the clients that drop",
            float,
            0.0,
            _dropout_high,
            why="the parameter finder needs {corrupt_fraction} + {dropout_fraction} <= 0.9, "
            "{corrupt_fraction} + 2 {dropout_fraction} <= 0.9 with {active}, "
            "unless {degree} is given",
            default=0.0,
        )
    table["active"] = Option(
        "active-adversary mode: signed keys and a consistency round", bool, default=False
    )
    if sparse:
        table["degree"] = Option(
            "neighbours k of each client (default: the parameter finder's)",
            int,
            1,
            lambda c: int(c["clients"]) - 1,
            why="{clients} - 1 is the complete graph",
            rules=(
                Rule(
                    lambda value, c: int(c["clients"]) % 2 == 0 or int(value) % 2 == 0,
                    "an even number when {clients} is odd",
                ),
            ),
        )
        table["corrupt_fraction"] = Option(
            "fraction of corrupt clients the parameter finder guards against",
            float,
            0.0,
            _corrupt_high,
            why="the parameter finder needs {corrupt_fraction} + max({dropout_fraction}, 0.05)"
            " <= 0.9, twice the dropout with {active}",
            default=0.05,
            unless=lambda c: "when {degree} is given (it only feeds the parameter finder)"
            if c.get("degree") is not None
            else None,
        )
    table["threshold"] = Option(
        "Shamir threshold t (default: the smallest safe one)",
        int,
        lambda c: _threshold_bounds(c, sparse=sparse)[0],
        lambda c: _threshold_bounds(c, sparse=sparse)[1],
        why=lambda c: _threshold_why(c, sparse=sparse),
    )
    return table


_REFUSALS = {
    "key_bits": "it has no Paillier key",
    "decryption": "it has no decryption committee",
    "ciphertext_bytes": "it sends no CKKS ciphertexts",
}


def _describe(config: ProtocolConfig | ActiveSimulation, *, sparse: bool) -> dict[str, Any]:
    public = _public(config)
    notes: list[str] = []
    if sparse and public.is_complete:
        notes.append(
            f"degree k = n - 1 = {public.degree}: the complete graph, as bonawitz "
            "(SecAgg+ is sparse only with a degree below n - 1)"
        )
    return {
        "clients": public.n,
        "dim": public.vector_length,
        "bits": public.bits,
        "threshold": public.threshold,
        "degree": public.degree,
        "graph": "complete" if public.is_complete else "harary",
        "mode": public.mode,
        "active": public.mode == ACTIVE,
        "notes": notes,
    }


def _config(
    params: SimulationParams,
    *,
    sparse: bool,
    mode: Mode = SEMI_HONEST,
    identities: Mapping[int, bytes] | None = None,
) -> ProtocolConfig:
    """A fresh-session config with :func:`graph_parameters`' degree and threshold."""
    degree, threshold = graph_parameters(params, sparse=sparse, mode=mode)
    return ProtocolConfig.create(
        client_ids_of(params),
        threshold=threshold,
        bits=params.bits,
        vector_length=params.dim,
        mode=mode,
        degree=degree,
        identities=identities,
    )


def _bonawitz_config(
    params: SimulationParams, *, active: bool = False
) -> ProtocolConfig | ActiveSimulation:
    if active:
        return ActiveSimulation.create(params, sparse=False)
    return _config(params, sparse=False)


def _secagg_plus_config(
    params: SimulationParams, *, active: bool = False
) -> ProtocolConfig | ActiveSimulation:
    if active:
        return ActiveSimulation.create(params, sparse=True)
    return _config(params, sparse=True)


@dataclass(frozen=True, repr=False)
class ActiveSimulation:
    """An active-mode config plus every client's Ed25519 signing key (in-process).

    A deployment registers identities out of band; this object plays that registry. The
    server is built from ``config`` alone and each client receives only its own key.
    Never give this object to a real server: it holds every client's signing key.
    """

    config: ProtocolConfig
    signing_keys: Mapping[int, SigningKey]

    def __repr__(self) -> str:
        return f"ActiveSimulation({self.config!r})"

    @classmethod
    def create(cls, params: SimulationParams, *, sparse: bool) -> ActiveSimulation:
        """Fresh identities (``SigningKey.generate``, a CSPRNG) for clients ``1..n`` and an
        active-mode config: SecAgg+ when ``sparse``, else the complete graph. Raises
        ConfigurationError as :meth:`ProtocolConfig.create` does (for example a threshold
        ``t <= 2n/3`` on the complete graph or ``2t <= k + 1`` on a sparse one)."""
        keys = {client_id: SigningKey.generate() for client_id in client_ids_of(params)}
        identities = {client_id: key.verify_key for client_id, key in keys.items()}
        return cls(_config(params, sparse=sparse, mode=ACTIVE, identities=identities), keys)


def _public(config: ProtocolConfig | ActiveSimulation) -> ProtocolConfig:
    return config.config if isinstance(config, ActiveSimulation) else config


def _make_client(
    config: ProtocolConfig | ActiveSimulation, client_id: int, source: InputSource
) -> Client:
    if isinstance(config, ActiveSimulation):
        if client_id not in config.signing_keys:
            raise ConfigurationError(f"client {client_id!r} is not in this session")
        return Client(config.config, client_id, source, config.signing_keys[client_id])
    return Client(config, client_id, source)


def _make_server(config: ProtocolConfig | ActiveSimulation) -> Server:
    return Server(_public(config))  # public config only


def _decode(data: bytes, sender: int) -> Message:
    return decode_message(data, sender=sender)


def _common(**kwargs: Any) -> ProtocolSpec:
    return ProtocolSpec(
        config_type=(ProtocolConfig, ActiveSimulation),
        round_names=ROUND_NAMES,
        make_server=_make_server,
        make_client=_make_client,
        client_ids=lambda config: _public(config).clients,
        vector_length=lambda config: _public(config).vector_length,
        bits=lambda config: _public(config).bits,
        decode=_decode,
        # "5 % dropout after ShareKeys": they never send their masked input, so the
        # server must regenerate their pairwise masks (the expensive case).
        dropout_round=ROUND_MASKED_INPUT,
        variants=("active",),  # make_config(params, active=True): an ActiveSimulation
        refusals=_REFUSALS | kwargs.pop("refusals", {}),
        **kwargs,
    )


def bonawitz_spec() -> ProtocolSpec:
    """Plain SecAgg: every client neighbours every other."""
    return _common(
        name="bonawitz",
        make_config=_bonawitz_config,
        description="Bonawitz et al. CCS'17, complete graph",
        accepts=lambda config: _public(config).is_complete,
        cost_model="secagg.cost.bonawitz_spec:BONAWITZ",
        options=_options(sparse=False),
        describe=lambda config: _describe(config, sparse=False),
        refusals={
            "degree": "it always uses the complete graph",
            "corrupt_fraction": "it feeds the SecAgg+ parameter finder; bonawitz uses the "
            "complete graph",
        },
    )


def secagg_plus_spec() -> ProtocolSpec:
    """SecAgg+: sparse Harary graph (takes any ProtocolConfig or ActiveSimulation, complete
    ones included)."""
    return _common(
        name="secagg+",
        make_config=_secagg_plus_config,
        description="Bell et al. CCS'20, Harary graph, (k, t) from the parameter finder",
        cost_model="secagg.cost.bonawitz_spec:SECAGG_PLUS",
        options=_options(sparse=True),
        describe=lambda config: _describe(config, sparse=True),
    )
