"""Threshold Paillier over Flower: clients encrypt, a committee of nodes decrypts the sum.

Theory of operation. The committee's key comes from an offline key ceremony
(:func:`secagg.integrations.flower.node_keys.deal_committee_keys`): a trusted dealer that is
never the aggregator writes the public key (every node and the ServerApp load it) and one
key share per committee node. Settings: ``SecAggSettings(protocol="threshold-paillier",
protocol_options={"public_key": key})`` (optionally ``"decryption": "balanced"``).

Before a session, the server asks every sampled node it has not identified yet which key
it holds: its answer is the digest of its committee public key and the index of its key
share (0 for none). A node with another committee's key is left out; two nodes claiming
one share are both left out. Committee seat i is the node holding share i; a seat whose
holder was not sampled is a *phantom* client the transport never contacts (it counts as
dropped, and t of the l seats must answer the decryption). Every client checks that the
setup's public key is its own committee's (otherwise a server could choose a key it can
decrypt with) and that its committee seat matches its share.

Parameters every client receives (msgpack): ``[public key bytes, committee (client ids in
share order), min_clients, guard_bits, decryption]``; the threshold is the key's.
Trust model: as :mod:`secagg.protocols.threshold_he.server` (semi-honest server); the
dealer sees the whole key.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np

from secagg.errors import (
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    MaliciousRequestError,
    UsageError,
)
from secagg.integrations.flower.protocols import Identity, SessionPlan
from secagg.integrations.flower.wire import unpack_peer
from secagg.protocols.base import SERVER_ID, ClientProtocol, Message
from secagg.protocols.bonawitz.config import SEMI_HONEST
from secagg.protocols.registry import ProtocolSpec, get_protocol

if TYPE_CHECKING:
    from secagg.he.threshold_paillier import ThresholdPublicKey
    from secagg.integrations.flower.node_keys import NodeKeys
    from secagg.integrations.flower.settings import ClientPolicy, SecAggSettings
    from secagg.integrations.flower.wire import SessionSetup
    from secagg.protocols.threshold_he.config import ThresholdHEConfig

__all__ = ["ThresholdPaillierOverFlower", "threshold_paillier"]

_MAX_PARAMS = 16 * 2**20
_DIGEST_BYTES = 32


def _public_key(settings: SecAggSettings) -> ThresholdPublicKey:
    from secagg.he.threshold_paillier import ThresholdPublicKey

    key = settings.protocol_options.get("public_key")
    if not isinstance(key, ThresholdPublicKey):
        raise ConfigurationError(
            "threshold-paillier needs protocol_options['public_key']: the committee's "
            "ThresholdPublicKey (node_keys.load_he_public_key)")
    return key


@functools.lru_cache(maxsize=8)
def _config(session_id: bytes, n: int, bits: int, vector_length: int, committee: tuple[int, ...],
            min_clients: int, guard_bits: int, decryption: str,
            key_bytes: bytes) -> ThresholdHEConfig:
    from secagg.he.threshold_paillier import ThresholdPublicKey
    from secagg.protocols.threshold_he.config import ThresholdHEConfig

    key = ThresholdPublicKey.from_bytes(key_bytes, party=SERVER_ID)
    return ThresholdHEConfig(
        session_id=session_id, clients=tuple(range(1, n + 1)), bits=bits,
        vector_length=vector_length, committee=committee, threshold=key.threshold,
        min_clients=min_clients, public_key=key, guard_bits=guard_bits, decryption=decryption,
    )


class ThresholdPaillierOverFlower:
    """Threshold Paillier with a committee of key-holding nodes (module docstring)."""

    name = "threshold-paillier"

    def __repr__(self) -> str:
        return "ThresholdPaillierOverFlower()"

    @property
    def spec(self) -> ProtocolSpec:
        return get_protocol(self.name)

    # -- server side ---------------------------------------------------------------------

    def check_settings(self, settings: SecAggSettings) -> None:
        from secagg.protocols.threshold_he.config import DECRYPTION_MODES

        _public_key(settings)
        unknown = set(settings.protocol_options) - {"public_key", "decryption"}
        if unknown:
            raise ConfigurationError(f"unknown threshold-paillier options {sorted(unknown)}")
        if settings.protocol_options.get("decryption", "full") not in DECRYPTION_MODES:
            raise ConfigurationError(f"decryption must be one of {DECRYPTION_MODES}")
        if settings.mode != SEMI_HONEST:
            raise ConfigurationError("threshold-paillier has no active mode")
        if settings.threshold is not None or settings.degree is not None:
            raise ConfigurationError(
                "threshold-paillier takes its committee and threshold from the key, "
                "not from threshold/degree")

    def wants_identities(self, settings: SecAggSettings) -> bool:
        return True  # which node holds which share

    def check_identity(self, settings: SecAggSettings, *, node_id: int, session_id: bytes,
                       challenge: bytes, answer: bytes) -> Identity:
        key = _public_key(settings)
        obj = unpack_peer(answer, error="identity answer is not msgpack", party=node_id,
                          max_bin_len=256)
        if (not isinstance(obj, list) or len(obj) != 2 or not isinstance(obj[0], bytes)
                or len(obj[0]) != _DIGEST_BYTES or isinstance(obj[1], bool)
                or not isinstance(obj[1], int) or not 0 <= obj[1] <= key.holders):
            raise DecodeError("malformed identity answer", party=node_id)
        digest, index = obj
        if digest != key.digest:
            raise AuthenticationError("it holds another committee's public key", party=node_id)
        return Identity(index, f"holder of share {index}" if index else "no key share")

    def plan(self, settings: SecAggSettings, *, session_id: bytes, nodes: Sequence[int],
             identities: Mapping[int, Identity], vector_length: int) -> SessionPlan:
        key = _public_key(settings)
        claims: dict[int, list[int]] = {}
        for node in nodes:
            index = identities[node].value
            assert isinstance(index, int)
            if index:
                claims.setdefault(index, []).append(node)
        refused: dict[int, str] = {}
        for index, owners in claims.items():
            if len(owners) > 1:
                refused.update(dict.fromkeys(owners, f"another node claims key share {index}"))
        kept = [node for node in nodes if node not in refused]
        if len(kept) < 2:
            raise ConfigurationError("an aggregation needs at least two nodes")
        node_of_client = {i + 1: node for i, node in enumerate(kept)}
        client_of_node = {node: client for client, node in node_of_client.items()}
        holder = {identities[node].value: node for node in kept if identities[node].value}
        committee: list[int] = []
        phantoms: set[int] = set()
        for index in range(1, key.holders + 1):
            if index in holder:
                committee.append(client_of_node[holder[index]])
            else:  # a seat whose holder is not in this round: it never answers
                phantom = len(kept) + len(phantoms) + 1
                phantoms.add(phantom)
                committee.append(phantom)
        n = len(kept) + len(phantoms)
        min_clients = min(settings.min_clients, len(kept))
        decryption = str(settings.protocol_options.get("decryption", "full"))
        key_bytes = key.to_bytes()
        config = _config(session_id, n, settings.bits, vector_length, tuple(committee),
                         min_clients, 1, decryption, key_bytes)
        params = bytes(msgpack.packb([key_bytes, committee, min_clients, 1, decryption],
                                     use_bin_type=True))
        sim = self._simulation(config)
        present = key.holders - len(phantoms)
        return SessionPlan(
            config=config, server=self.spec.make_server(sim), params=params,
            node_of_client=node_of_client, phantoms=frozenset(phantoms), refused=refused,
            summary=(f"threshold-paillier, {present} of {key.holders} committee seats "
                     f"sampled, t={key.threshold}, {decryption} decryption"),
        )

    @staticmethod
    def _simulation(config: ThresholdHEConfig) -> Any:
        """The registry's config object for ``config``, without any key material."""
        from secagg.protocols.threshold_he.spec import ThresholdHESimulation

        return ThresholdHESimulation(config)

    # -- client side ---------------------------------------------------------------------

    def identify(self, keys: NodeKeys, *, node_id: int, session_id: bytes,
                 challenge: bytes) -> bytes:
        if keys.he_public_key is None:
            raise ConfigurationError(
                "threshold-paillier: this node has no committee public key "
                "(node config secagg-he-public-key)")
        index = keys.key_share.index if keys.key_share is not None else 0
        return bytes(msgpack.packb([keys.he_public_key.digest, index], use_bin_type=True))

    def client_config(self, setup: SessionSetup, keys: NodeKeys, policy: ClientPolicy) -> Any:
        if keys.he_public_key is None:
            raise ConfigurationError("threshold-paillier: this node has no committee public "
                                     "key to check the server's against")
        obj = unpack_peer(setup.params, error="threshold-paillier parameters are not msgpack",
                          party=SERVER_ID, max_bin_len=_MAX_PARAMS, max_str_len=64,
                          max_array_len=max(setup.n, 8))
        if not isinstance(obj, list) or len(obj) != 5:
            raise DecodeError("bad threshold-paillier parameters", party=SERVER_ID)
        key_bytes, committee, min_clients, guard_bits, decryption = obj
        if key_bytes != keys.he_public_key.to_bytes():
            raise MaliciousRequestError("the setup's public key is not this node's committee "
                                        "key", party=SERVER_ID)
        if not isinstance(committee, list) or any(
            isinstance(c, bool) or not isinstance(c, int) for c in committee
        ):
            raise DecodeError("bad committee", party=SERVER_ID)
        for value in (min_clients, guard_bits):
            if isinstance(value, bool) or not isinstance(value, int):
                raise DecodeError("bad threshold-paillier parameters", party=SERVER_ID)
        if not isinstance(decryption, str):
            raise DecodeError("bad decryption mode", party=SERVER_ID)
        if min_clients < policy.min_clients:
            raise MaliciousRequestError(
                f"members would decrypt sums of {min_clients} clients, policy needs "
                f"{policy.min_clients}", party=SERVER_ID)
        share = keys.key_share
        seat = committee.index(setup.client_id) + 1 if setup.client_id in committee else 0
        if (share.index if share is not None else 0) != seat:
            raise MaliciousRequestError("the setup puts this node on another committee seat",
                                        party=SERVER_ID)
        try:
            return _config(setup.session_id, setup.n, setup.bits, setup.vector_length,
                           tuple(committee), min_clients, guard_bits, decryption, key_bytes)
        except ConfigurationError as exc:
            raise DecodeError(f"inconsistent threshold-paillier setup: {exc}",
                              party=SERVER_ID) from None

    def create_client(self, config: Any, client_id: int, vector: np.ndarray,
                      keys: NodeKeys) -> ClientProtocol:
        from secagg.protocols.threshold_he.client import ThresholdHEClient

        share = keys.key_share if client_id in config.committee else None
        return ThresholdHEClient(config, client_id, vector, key_share=share)

    def dump_client(self, client: ClientProtocol) -> bytes:
        from secagg.protocols.threshold_he.client import ThresholdHEClient

        if not isinstance(client, ThresholdHEClient):
            raise UsageError("not a ThresholdHEClient")
        return client.to_state_bytes()

    def load_client(self, config: Any, client_id: int, data: bytes,
                    keys: NodeKeys) -> ClientProtocol:
        from secagg.protocols.threshold_he.client import ThresholdHEClient

        share = keys.key_share if client_id in config.committee else None
        return ThresholdHEClient.from_state_bytes(config, client_id, data, key_share=share)

    def decode(self, data: bytes, sender: int) -> Message:
        return self.spec.decode(data, sender)


def threshold_paillier() -> ThresholdPaillierOverFlower:
    """Threshold Paillier over Flower."""
    return ThresholdPaillierOverFlower()
