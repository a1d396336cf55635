"""Registry entries of the threshold-HE protocols: ``threshold-paillier`` and ``ckks``.

A simulation needs what a real deployment distributes out of band: the dealer's key shares
(threshold Paillier) or the clients' secret context (CKKS). :class:`ThresholdHESimulation`
carries them beside the public config; the server is built from the public config alone,
and each client receives only its own key material.

CLI parameters: ``--threshold`` is the committee's t and ``--degree`` the committee size
(default: min(5, n) members, t a majority of them; CKKS: t = 1).

The HE backends (gmpy2, TenSEAL: the ``he`` extra) are imported when a session is set up,
never when the spec loads, so that the cost formulas and the option checks run on a core
install.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from secagg.protocols.base import Message
from secagg.protocols.registry import InputSource, ProtocolSpec, SimulationParams, client_ids_of
from secagg.protocols.threshold_he.config import (
    DEFAULT_COMMITTEE,
    DEFAULT_DECRYPTION,
    ThresholdHEConfig,
)
from secagg.protocols.threshold_he.messages import (
    ROUND_ENCRYPTED_INPUT,
    THRESHOLD_HE_ROUNDS,
    decode_threshold_he_message,
)

if TYPE_CHECKING:
    from secagg.he.ckks import CkksContext
    from secagg.he.threshold_paillier import KeyShare
    from secagg.protocols.threshold_he.client import ThresholdHEClient
    from secagg.protocols.threshold_he.server import ThresholdHEServer

__all__ = ["SIMULATION_KEY_BITS", "ThresholdHESimulation", "ckks_spec", "threshold_paillier_spec"]

SIMULATION_KEY_BITS = 2048


@dataclass(frozen=True, repr=False)
class ThresholdHESimulation:
    """The public config plus the key material a dealer hands to the clients (in-process).

    Never give this object to a real server: it holds the committee's secrets (a
    ThresholdHEServer refuses it, and refuses to run next to live key shares unless built
    with ``simulation=True``, as this spec's ``make_server`` does). Never pickled.
    """

    config: ThresholdHEConfig
    key_shares: Mapping[int, KeyShare] = field(default_factory=dict)
    ckks_secret: CkksContext | None = None
    workers: int = 1

    def __repr__(self) -> str:
        return f"ThresholdHESimulation({self.config!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a ThresholdHESimulation holds key shares and cannot be pickled")

    @classmethod
    def threshold_paillier(
        cls,
        params: SimulationParams,
        *,
        key_bits: int = SIMULATION_KEY_BITS,
        decryption: str = DEFAULT_DECRYPTION,
        safe_primes: tuple[int, int] | None = None,
    ) -> ThresholdHESimulation:
        """Dealer setup for ``params`` (committee size from ``degree``, t from ``threshold``)
        in committee decryption mode ``decryption`` (``"full"`` or ``"balanced"``);
        ``safe_primes`` fixes the key's primes (public test data, for benchmarks)."""
        from secagg.protocols.threshold_he.keys import setup_threshold_paillier

        clients, committee = _clients_and_committee(params)
        config, shares = setup_threshold_paillier(
            clients,
            bits=params.bits,
            vector_length=params.dim,
            committee=committee,
            threshold=params.threshold,
            key_bits=key_bits,
            decryption=decryption,
            safe_primes=safe_primes,
        )
        return cls(config, shares)

    @classmethod
    def ckks(cls, params: SimulationParams) -> ThresholdHESimulation:
        """Key-holder setup: every client gets the secret context, the server the public."""
        from secagg.protocols.threshold_he.keys import setup_ckks

        clients, committee = _clients_and_committee(params)
        config, secret = setup_ckks(
            clients,
            bits=params.bits,
            vector_length=params.dim,
            committee=committee,
            threshold=params.threshold or 1,
        )
        return cls(config, ckks_secret=secret)


def _clients_and_committee(params: SimulationParams) -> tuple[list[int], list[int]]:
    """Clients ``1..params.clients`` and the committee: the first ``params.degree`` of
    them, or the first ``min(DEFAULT_COMMITTEE, clients)`` when ``degree`` is 0 or None.
    Raises ConfigurationError for fewer than two clients (:func:`registry.client_ids_of`)."""
    clients = client_ids_of(params)
    return clients, clients[: params.degree or min(DEFAULT_COMMITTEE, len(clients))]


def _make_client(
    simulation: ThresholdHESimulation, client_id: int, source: InputSource
) -> ThresholdHEClient:
    from secagg.protocols.threshold_he.client import ThresholdHEClient

    return ThresholdHEClient(
        simulation.config,
        client_id,
        source,
        key_share=simulation.key_shares.get(client_id),
        ckks_secret=simulation.ckks_secret,
        workers=simulation.workers,
    )


def _make_server(simulation: ThresholdHESimulation) -> ThresholdHEServer:
    from secagg.protocols.threshold_he.server import ThresholdHEServer

    # The public config only; this process holds the members' shares on purpose.
    return ThresholdHEServer(simulation.config, simulation=True)


def _decode(data: bytes, sender: int) -> Message:
    return decode_threshold_he_message(data, sender=sender)


def _spec(
    name: str,
    description: str,
    make_config: Callable[..., ThresholdHESimulation],
    backend: str,
    cost_model: str,
    variants: tuple[str, ...] = (),
    *,
    extras: Mapping[str, str],
) -> ProtocolSpec:
    from secagg.protocols.threshold_he.spec_options import describe, options, refusals

    return ProtocolSpec(
        name=name,
        config_type=ThresholdHESimulation,
        round_names=THRESHOLD_HE_ROUNDS,
        make_config=make_config,
        make_server=_make_server,
        make_client=_make_client,
        client_ids=lambda simulation: simulation.config.clients,
        vector_length=lambda simulation: simulation.config.vector_length,
        bits=lambda simulation: simulation.config.bits,
        decode=_decode,
        dropout_round=ROUND_ENCRYPTED_INPUT,
        description=description,
        accepts=lambda simulation: simulation.config.backend == backend,
        variants=variants,
        cost_model=cost_model,
        options=options(paillier=backend == "threshold-paillier"),
        refusals=refusals(paillier=backend == "threshold-paillier"),
        describe=describe,
        extras=extras,
    )


def threshold_paillier_spec() -> ProtocolSpec:
    """Packed threshold Paillier, 2048-bit dealer key, committee decryption with proofs."""
    return _spec(
        "threshold-paillier",
        "threshold Paillier (Shoup / Damgard-Jurik), trusted dealer, committee of key holders",
        ThresholdHESimulation.threshold_paillier,
        "threshold-paillier",
        "secagg.cost.threshold_he_spec:THRESHOLD_PAILLIER",
        variants=("decryption", "safe_primes", "key_bits"),
        extras={"gmpy2": "he"},
    )


def ckks_spec() -> ProtocolSpec:
    """CKKS through TenSEAL, single key held by the clients, never by the server."""
    return _spec(
        "ckks",
        "CKKS (TenSEAL), single-key: clients hold the secret key, the server only adds",
        ThresholdHESimulation.ckks,
        "ckks",
        "secagg.cost.threshold_he_spec:CKKS",
        extras={"gmpy2": "he", "tenseal": "he"},
    )
