"""Bonawitz et al. (CCS'17) and SecAgg+ (Bell et al., CCS'20) over Flower.

``"secagg+"`` (the default protocol) takes its graph from the parameter finder
(:func:`secagg.protocols.bonawitz.params.find_parameters`) for the settings'
``corrupt_fraction`` and ``dropout_fraction`` unless ``degree`` is given; ``"bonawitz"``
is the complete graph. Both run in semi-honest or active mode.

Active mode (a malicious server): before a session the server asks every sampled node it
has not identified yet to prove which registered Ed25519 key it holds
(:mod:`secagg.integrations.flower.identity`); nodes without a registered key or a valid
proof are left out of the session, never fatal. The session's config lists each client's
verify key; every client checks these against its own copy of the registry (the server
cannot add Sybil clients), signs its advertised keys and its consistency check, and the
protocol runs its ConsistencyCheck round.

Parameters every client receives (msgpack): ``[threshold, degree or None, mode,
[verify key of client 1, 2, ...] or None]``; the client rebuilds the
:class:`~secagg.protocols.bonawitz.config.ProtocolConfig` itself (the SecAgg+ graph
follows from the session id), so the server cannot hand it an inconsistent one.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np

from secagg.errors import (
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    MaliciousRequestError,
)
from secagg.integrations.flower.client_state import BonawitzBackend, ClientBackend
from secagg.integrations.flower.identity import check_identify_proof, identify_proof
from secagg.integrations.flower.protocols import Identity, SessionPlan
from secagg.integrations.flower.settings import resolve_degree, resolve_threshold
from secagg.integrations.flower.wire import unpack_peer
from secagg.protocols.base import SERVER_ID, ClientProtocol, Message
from secagg.protocols.bonawitz.config import (
    ACTIVE,
    MODES,
    VERIFY_KEY_BYTES,
    Mode,
    ProtocolConfig,
)
from secagg.protocols.bonawitz.params import find_parameters
from secagg.protocols.registry import ProtocolSpec, get_protocol
from secagg.signing import SIGNATURE_BYTES

if TYPE_CHECKING:
    from secagg.integrations.flower.node_keys import NodeKeys
    from secagg.integrations.flower.settings import ClientPolicy, SecAggSettings
    from secagg.integrations.flower.wire import SessionSetup

__all__ = ["BonawitzOverFlower", "bonawitz", "graph_for", "secagg_plus"]

log = logging.getLogger(__name__)

_MAX_PARAMS = 64 * 2**20


def graph_for(settings: SecAggSettings, n: int, *, sparse: bool) -> tuple[int | None, int]:
    """``(degree, threshold)`` of a session over ``n`` clients (degree None: complete).

    A given ``degree`` (int or fraction, :func:`resolve_degree`) is used; otherwise
    ``sparse`` takes the parameter finder's graph for the settings' corrupt and dropout
    fractions (the complete graph when the finder finds none, e.g. for very few nodes),
    else the complete graph. The threshold is the settings' (int or fraction of the
    share holders, :func:`resolve_threshold`), else the finder's, else the default.
    """
    mode: Mode = settings.mode
    degree = resolve_degree(settings.degree, n)
    threshold: int | None = None
    if settings.degree is None and sparse and n >= 3:
        try:
            found = find_parameters(
                n, corrupt_fraction=settings.corrupt_fraction,
                dropout_fraction=settings.dropout_fraction, semi_malicious=mode == ACTIVE,
            )
        except ConfigurationError as exc:
            log.info("secagg: no SecAgg+ graph for %d nodes (%s): complete graph", n, exc)
        else:
            degree = None if found.degree >= n - 1 else found.degree
            threshold = found.threshold
    holders = (degree if degree is not None else n - 1) + 1
    if settings.threshold is not None or threshold is None:
        threshold = resolve_threshold(settings.threshold, holders, mode,
                                      complete=degree is None)
    return degree, threshold


@functools.lru_cache(maxsize=16)
def _cached_config(session_id: bytes, n: int, threshold: int, bits: int, vector_length: int,
                   degree: int | None, mode: Mode,
                   identities: tuple[bytes, ...] | None) -> ProtocolConfig:
    # Rebuilding a SecAgg+ graph is costly, and every stage of a session needs the config.
    return ProtocolConfig.create(
        clients=range(1, n + 1), threshold=threshold, bits=bits, vector_length=vector_length,
        degree=degree, session_id=session_id, mode=mode,
        identities=None if identities is None else dict(enumerate(identities, start=1)),
    )


def _decode_params(data: bytes, n: int) -> tuple[int, int | None, Mode, tuple[bytes, ...] | None]:
    obj = unpack_peer(data, error="Bonawitz parameters are not valid msgpack", party=SERVER_ID,
                      max_bin_len=_MAX_PARAMS, max_str_len=64, max_array_len=n + 8)
    if not isinstance(obj, list) or len(obj) != 4:
        raise DecodeError("bad Bonawitz parameters", party=SERVER_ID)
    threshold, degree, mode, identities = obj
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= n:
        raise DecodeError("bad threshold", party=SERVER_ID)
    if degree is not None and (isinstance(degree, bool) or not isinstance(degree, int)
                               or not 1 <= degree < n):
        raise DecodeError("bad degree", party=SERVER_ID)
    if mode not in MODES:
        raise DecodeError("bad mode", party=SERVER_ID)
    keys: tuple[bytes, ...] | None = None
    if identities is not None:
        if not isinstance(identities, list) or len(identities) != n or any(
            not isinstance(k, bytes) or len(k) != VERIFY_KEY_BYTES for k in identities
        ):
            raise DecodeError("bad identities", party=SERVER_ID)
        keys = tuple(identities)
    return threshold, degree, mode, keys


class BonawitzOverFlower:
    """The Bonawitz / SecAgg+ family over Flower (see the module docstring).

    ``sparse``: without a ``degree`` setting, take the finder's SecAgg+ graph (``secagg+``)
    or the complete graph (``bonawitz``). ``backend`` overrides how clients are created
    and carried (tests); by default a :class:`BonawitzBackend` with the node's identity.
    """

    def __init__(self, name: str, *, sparse: bool, backend: ClientBackend | None = None) -> None:
        self._name = name
        self._sparse = sparse
        self._backend = backend

    def __repr__(self) -> str:
        return f"BonawitzOverFlower({self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def spec(self) -> ProtocolSpec:
        return get_protocol(self._name)

    def with_backend(self, backend: ClientBackend) -> BonawitzOverFlower:
        """The same protocol, with clients made and carried by ``backend``."""
        return BonawitzOverFlower(self._name, sparse=self._sparse, backend=backend)

    # -- server side ---------------------------------------------------------------------

    def check_settings(self, settings: SecAggSettings) -> None:
        if not self._sparse and settings.degree is not None:
            raise ConfigurationError(
                "protocol 'bonawitz' is the complete graph: use 'secagg+' to set a degree")
        if settings.protocol_options:
            raise ConfigurationError(f"protocol {self._name!r} takes no protocol_options")

    def wants_identities(self, settings: SecAggSettings) -> bool:
        return settings.mode == ACTIVE

    def check_identity(self, settings: SecAggSettings, *, node_id: int, session_id: bytes,
                       challenge: bytes, answer: bytes) -> Identity:
        """The registered name a node's signed answer proves. AuthenticationError for a key
        outside the registry or a proof that does not verify; DecodeError if malformed."""
        registry = settings.identities
        assert registry is not None  # checked with the settings
        obj = unpack_peer(answer, error="identity answer is not msgpack", party=node_id,
                          max_bin_len=256)
        if (not isinstance(obj, list) or len(obj) != 2 or not isinstance(obj[0], bytes)
                or len(obj[0]) != VERIFY_KEY_BYTES or not isinstance(obj[1], bytes)
                or len(obj[1]) != SIGNATURE_BYTES):
            raise DecodeError("malformed identity answer", party=node_id)
        verify_key, signature = obj
        name = registry.name_of(verify_key)
        if name is None:
            fingerprint = hashlib.sha256(verify_key).hexdigest()[:16]
            raise AuthenticationError(
                f"its key (fingerprint {fingerprint}) is not in the identity registry",
                party=node_id)
        check_identify_proof(verify_key, signature, session_id, node_id, challenge,
                             party=node_id)
        return Identity(verify_key, f"registered as {name!r}")

    def plan(self, settings: SecAggSettings, *, session_id: bytes, nodes: Sequence[int],
             identities: Mapping[int, Identity], vector_length: int) -> SessionPlan:
        refused: dict[int, str] = {}
        keys: dict[int, bytes] = {}
        if settings.mode == ACTIVE:
            holders: dict[bytes, list[int]] = {}
            for node in nodes:
                value = identities[node].value
                assert isinstance(value, bytes)
                holders.setdefault(value, []).append(node)
            for key, owners in holders.items():
                if len(owners) > 1:  # one key on two nodes: neither can be told apart
                    refused.update(dict.fromkeys(owners, "another node holds the same key"))
                else:
                    keys[owners[0]] = key
        kept = [node for node in nodes if node not in refused]
        node_of_client = {i + 1: node for i, node in enumerate(kept)}
        n = len(node_of_client)
        if n < 2:
            raise ConfigurationError("an aggregation needs at least two nodes")
        degree, threshold = graph_for(settings, n, sparse=self._sparse)
        identity_list = ([keys[node_of_client[c]] for c in range(1, n + 1)]
                         if settings.mode == ACTIVE else None)
        config = _cached_config(session_id, n, threshold, settings.bits, vector_length, degree,
                                settings.mode,
                                None if identity_list is None else tuple(identity_list))
        params = bytes(msgpack.packb([threshold, degree, settings.mode, identity_list],
                                     use_bin_type=True))
        graph = "complete graph" if degree is None else f"SecAgg+ graph k={degree}"
        return SessionPlan(
            config=config, server=self.spec.make_server(config), params=params,
            node_of_client=node_of_client, refused=refused,
            summary=f"{self._name}, {graph}, t={threshold}, {settings.mode}",
        )

    # -- client side ---------------------------------------------------------------------

    def identify(self, keys: NodeKeys, *, node_id: int, session_id: bytes,
                 challenge: bytes) -> bytes:
        """A signed proof of the node's key; ConfigurationError if the node has none or its
        own registry does not list it."""
        if keys.signing_key is None:
            raise ConfigurationError(
                "active mode: this node has no signing key (node config secagg-signing-key)")
        if keys.registry is not None and keys.signing_key.verify_key not in keys.registry:
            raise ConfigurationError("this node's signing key is not in its own registry")
        proof = identify_proof(keys.signing_key, session_id, node_id, challenge)
        return bytes(msgpack.packb([keys.signing_key.verify_key, proof], use_bin_type=True))

    def client_config(self, setup: SessionSetup, keys: NodeKeys, policy: ClientPolicy) -> Any:
        threshold, degree, mode, identities = _decode_params(setup.params, setup.n)
        if policy.require_active and mode != ACTIVE:
            raise MaliciousRequestError("this node's policy requires active mode",
                                        party=SERVER_ID)
        if mode == ACTIVE:
            self._check_identities(setup, keys, identities)
        elif identities is not None:
            raise DecodeError("identities outside active mode", party=SERVER_ID)
        return _cached_config(setup.session_id, setup.n, threshold, setup.bits,
                              setup.vector_length, degree, mode, identities)

    @staticmethod
    def _check_identities(setup: SessionSetup, keys: NodeKeys,
                          identities: tuple[bytes, ...] | None) -> None:
        """Every identity registered and distinct, this node's own at its client id."""
        if keys.registry is None or keys.signing_key is None:
            raise ConfigurationError("active mode needs this node's signing key and registry "
                                     "(node config secagg-signing-key, secagg-registry)")
        if identities is None:
            raise DecodeError("active mode without identities", party=SERVER_ID)
        if len(set(identities)) != len(identities):
            raise MaliciousRequestError("the setup lists one identity twice", party=SERVER_ID)
        if any(key not in keys.registry for key in identities):
            raise MaliciousRequestError("the setup lists an identity outside the registry",
                                        party=SERVER_ID)
        if identities[setup.client_id - 1] != keys.signing_key.verify_key:
            raise MaliciousRequestError("the setup gives this node another identity",
                                        party=SERVER_ID)

    def _backend_for(self, keys: NodeKeys) -> ClientBackend:
        return self._backend or BonawitzBackend(keys.signing_key)

    def create_client(self, config: Any, client_id: int, vector: np.ndarray,
                      keys: NodeKeys) -> ClientProtocol:
        return self._backend_for(keys).create(config, client_id, vector)

    def dump_client(self, client: ClientProtocol) -> bytes:
        return BonawitzBackend().dump(client) if self._backend is None \
            else self._backend.dump(client)

    def load_client(self, config: Any, client_id: int, data: bytes,
                    keys: NodeKeys) -> ClientProtocol:
        return self._backend_for(keys).load(config, client_id, data)

    def decode(self, data: bytes, sender: int) -> Message:
        return self.spec.decode(data, sender)


def secagg_plus() -> BonawitzOverFlower:
    """SecAgg+: the parameter finder's graph unless ``degree`` is set."""
    return BonawitzOverFlower("secagg+", sparse=True)


def bonawitz() -> BonawitzOverFlower:
    """Plain SecAgg: the complete graph."""
    return BonawitzOverFlower("bonawitz", sparse=False)
