"""Threshold CKKS over Flower: a committee of nodes generates the key in the session,
every node encrypts its update under it, and any t members decrypt the sum.

Theory of operation. Nothing is dealt and no node needs key files: the committee's key is
generated inside each session (:mod:`secagg.protocols.threshold_ckks`: the members advertise
sealing keys, deal Shamir shares of their secrets to each other through the server in
sealed boxes, check them; every client encrypts under the collective key; the members that
hold a key share send one decryption share each). The server never holds a key share.
Settings: ``SecAggSettings(protocol="threshold-ckks")``; ``degree`` is the committee size
(an int, or a fraction of the sampled nodes; default min(5, n)), ``threshold`` the
committee's t (an int, or a fraction of the committee; default a majority). The server
draws the committee among the sampled nodes at random for every session (a CSPRNG), so
that no node carries the key setup every round.

Stages are the protocol's five rounds: a committee node is trained when the key setup
starts (stage 0), any other node when the input round starts (stage 3). Between stages a
node's client (its input until it is sent, a member's key material) is kept in the node's
``context.state`` as :meth:`ThresholdCkksClient.to_state_bytes` (secret: never sent).

Parameters every client receives (msgpack): ``[committee (client ids), threshold,
min_clients, scheme parameters]``, the scheme's parameters as
:meth:`~secagg.he.threshold_ckks.ThresholdCkksParameters.to_dict`. The client rebuilds the
:class:`~secagg.protocols.threshold_ckks.config.ThresholdCkksConfig` from them and the
setup, so every check of the config applies (a 128-bit secure ring, a noise budget that
fits the committee, the clients and the bits, a threshold within the committee), and
refuses a ``min_clients`` below its policy's (members would decrypt sums of fewer nodes).

Trust model: a semi-honest server (it follows the protocol; it never sees a key share or
an individual update), and fewer than t colluding committee members. No active mode.
"""

from __future__ import annotations

import functools
import math
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np

from secagg.errors import ConfigurationError, DecodeError, MaliciousRequestError, UsageError
from secagg.integrations.flower.exchange import BASE_BYTES
from secagg.integrations.flower.protocols import Identity, SessionPlan
from secagg.integrations.flower.wire import unpack_peer
from secagg.protocols.base import SERVER_ID, ClientProtocol, Message
from secagg.protocols.bonawitz.config import SEMI_HONEST
from secagg.protocols.registry import ProtocolSpec, get_protocol

if TYPE_CHECKING:
    from secagg.integrations.flower.node_keys import NodeKeys
    from secagg.integrations.flower.settings import ClientPolicy, SecAggSettings
    from secagg.integrations.flower.wire import SessionSetup
    from secagg.protocols.threshold_ckks.config import ThresholdCkksConfig

__all__ = ["ThresholdCkksOverFlower", "committee_for", "max_reply_bytes", "threshold_ckks"]

NAME = "threshold-ckks"
_MAX_PARAMS_ARRAY = 8


def committee_for(settings: SecAggSettings, n: int) -> tuple[int, int]:
    """``(committee size, threshold)`` of a session over ``n`` nodes.

    ``settings.degree``: an int is the size, a float ``f`` the fraction ``round(f n)`` of
    the nodes (at least 1), None min(5, n). ``settings.threshold``: an int is t, a float
    ``f`` the fraction ``ceil(f m)`` of the committee (at least 1), None a majority.
    Raises ConfigurationError when the size is not in 1..n or t not in 1..size.
    """
    from secagg.protocols.threshold_ckks.config import DEFAULT_COMMITTEE

    degree, threshold = settings.degree, settings.threshold
    if degree is None:
        size = min(DEFAULT_COMMITTEE, n)
    elif isinstance(degree, float):
        size = max(1, round(degree * n))
    else:
        size = degree
    if not 1 <= size <= n:
        raise ConfigurationError(
            f"threshold-ckks: a committee of {size} among {n} nodes (degree is the "
            "committee size: 1..n, or a fraction of the nodes)")
    if threshold is None:
        t = size // 2 + 1
    elif isinstance(threshold, float):
        t = max(1, math.ceil(threshold * size - 1e-9))
    else:
        t = threshold
    if not 1 <= t <= size:
        raise ConfigurationError(
            f"threshold-ckks: threshold {t} for a committee of {size} (1..{size})")
    return size, t


@functools.lru_cache(maxsize=16)
def _config(session_id: bytes, n: int, bits: int, vector_length: int, committee: tuple[int, ...],
            threshold: int, min_clients: int,
            scheme: tuple[tuple[str, int], ...] | None) -> ThresholdCkksConfig:
    # Every stage of a session needs the config; building it checks the parameters.
    from secagg.he.threshold_ckks import ThresholdCkksParameters
    from secagg.protocols.threshold_ckks.config import ThresholdCkksConfig

    params = None if scheme is None else ThresholdCkksParameters.from_dict(
        dict(scheme), party=SERVER_ID)
    return ThresholdCkksConfig(
        session_id=session_id, clients=tuple(range(1, n + 1)), bits=bits,
        vector_length=vector_length, committee=committee, threshold=threshold,
        min_clients=min_clients, params=params,
    )


def max_reply_bytes(config: ThresholdCkksConfig) -> int:
    """The largest reply a node sends in a session of ``config``: a member's key deal (its
    public key share and a sealed delivery per peer), a ciphertext or a decryption share,
    plus the transport's allowance for message headers."""
    from secagg.channel import OVERHEAD_BYTES
    from secagg.he.threshold_ckks import (
        MAX_MEMBER_ID,
        Ciphertext,
        DecryptionShare,
        KeyShareDelivery,
        PublicKeyShare,
    )

    params, length, top = config.scheme, config.vector_length, MAX_MEMBER_ID
    deal = PublicKeyShare.encoded_size(params, top) + (len(config.committee) - 1) * (
        KeyShareDelivery.encoded_size(params, top, top) + OVERHEAD_BYTES + 16)
    largest = max(deal, Ciphertext.encoded_size(params, length),
                  DecryptionShare.encoded_size(params, length, top))
    return largest + BASE_BYTES


class ThresholdCkksOverFlower:
    """Threshold CKKS with a committee of nodes drawn per session (module docstring)."""

    name = NAME

    def __repr__(self) -> str:
        return "ThresholdCkksOverFlower()"

    @property
    def spec(self) -> ProtocolSpec:
        return get_protocol(NAME)

    # -- server side ---------------------------------------------------------------------

    def check_settings(self, settings: SecAggSettings) -> None:
        """ConfigurationError for active mode, protocol options (it takes none), bits
        beyond the scheme's, or an int threshold above an int committee size."""
        from secagg.protocols.threshold_ckks.config import MAX_BITS

        if settings.mode != SEMI_HONEST:
            raise ConfigurationError("threshold-ckks has no active mode")
        if settings.protocol_options:
            raise ConfigurationError(
                "threshold-ckks takes no protocol_options: its key is generated in the session")
        if settings.bits > MAX_BITS:
            raise ConfigurationError(f"threshold-ckks takes at most {MAX_BITS}-bit values")
        degree, threshold = settings.degree, settings.threshold
        if isinstance(degree, int) and isinstance(threshold, int) and threshold > degree:
            raise ConfigurationError(
                f"threshold-ckks: threshold {threshold} above the committee size {degree}")

    def wants_identities(self, settings: SecAggSettings) -> bool:
        return False  # nothing is dealt before the session: no node holds a key yet

    def check_identity(self, settings: SecAggSettings, *, node_id: int, session_id: bytes,
                       challenge: bytes, answer: bytes) -> Identity:
        raise ConfigurationError("threshold-ckks identifies no nodes")

    def plan(self, settings: SecAggSettings, *, session_id: bytes, nodes: Sequence[int],
             identities: Mapping[int, Identity], vector_length: int) -> SessionPlan:
        n = len(nodes)
        if n < 2:
            raise ConfigurationError("an aggregation needs at least two nodes")
        size, threshold = committee_for(settings, n)
        committee = tuple(sorted(secrets.SystemRandom().sample(range(1, n + 1), size)))
        min_clients = max(2, min(settings.min_clients, n))
        config = _config(session_id, n, settings.bits, vector_length, committee, threshold,
                         min_clients, None)
        scheme = config.scheme
        params = bytes(msgpack.packb(
            [list(committee), threshold, min_clients, scheme.to_dict()], use_bin_type=True))
        return SessionPlan(
            config=config, server=self.spec.make_server(config), params=params,
            node_of_client={i + 1: node for i, node in enumerate(sorted(nodes))},
            max_reply_bytes=max_reply_bytes(config),
            summary=(f"threshold-ckks, committee of {size} of {n} nodes, t={threshold}, "
                     f"N={scheme.degree}, {scheme.limbs} limbs"),
        )

    # -- client side ---------------------------------------------------------------------

    def identify(self, keys: NodeKeys, *, node_id: int, session_id: bytes,
                 challenge: bytes) -> bytes:
        raise ConfigurationError("threshold-ckks identifies no nodes")

    def client_config(self, setup: SessionSetup, keys: NodeKeys, policy: ClientPolicy) -> Any:
        """The config the setup describes. DecodeError for malformed or inconsistent
        parameters (the config's own checks), MaliciousRequestError for a ``min_clients``
        below the policy's."""
        obj = unpack_peer(setup.params, error="threshold-ckks parameters are not msgpack",
                          party=SERVER_ID, max_bin_len=0, max_str_len=8, max_map_len=8,
                          max_array_len=max(setup.n, _MAX_PARAMS_ARRAY))
        if not isinstance(obj, list) or len(obj) != 4 or not isinstance(obj[3], dict):
            raise DecodeError("bad threshold-ckks parameters", party=SERVER_ID)
        committee, threshold, min_clients, scheme = obj
        if not isinstance(committee, list) or any(
            type(c) is not int for c in [*committee, threshold, min_clients]
        ) or any(type(k) is not str or type(v) is not int for k, v in scheme.items()):
            raise DecodeError("bad threshold-ckks parameters", party=SERVER_ID)
        if min_clients < policy.min_clients:
            raise MaliciousRequestError(
                f"members would decrypt sums of {min_clients} clients, policy needs "
                f"{policy.min_clients}", party=SERVER_ID)
        try:
            return _config(setup.session_id, setup.n, setup.bits, setup.vector_length,
                           tuple(committee), threshold, min_clients,
                           tuple(sorted(scheme.items())))
        except (ConfigurationError, DecodeError) as exc:
            raise DecodeError(f"inconsistent threshold-ckks setup: {exc}"[:200],
                              party=SERVER_ID) from None

    def create_client(self, config: Any, client_id: int, vector: np.ndarray,
                      keys: NodeKeys) -> ClientProtocol:
        from secagg.protocols.threshold_ckks.client import ThresholdCkksClient

        return ThresholdCkksClient(config, client_id, vector)

    def dump_client(self, client: ClientProtocol) -> bytes:
        from secagg.protocols.threshold_ckks.client import ThresholdCkksClient

        if not isinstance(client, ThresholdCkksClient):
            raise UsageError("not a ThresholdCkksClient")
        return client.to_state_bytes()

    def load_client(self, config: Any, client_id: int, data: bytes,
                    keys: NodeKeys) -> ClientProtocol:
        from secagg.protocols.threshold_ckks.client import ThresholdCkksClient

        return ThresholdCkksClient.from_state_bytes(config, client_id, data)

    def decode(self, data: bytes, sender: int) -> Message:
        return self.spec.decode(data, sender)


def threshold_ckks() -> ThresholdCkksOverFlower:
    """Threshold CKKS over Flower."""
    return ThresholdCkksOverFlower()
