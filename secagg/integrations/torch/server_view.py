"""What an honest-but-curious server receives from one client, taken off the wire.

For the privacy demonstration the attacker must work on exactly the bytes the server gets,
not on a re-implementation of the client's masking. :func:`observe_masked_input` runs one
real session of a registered masking protocol (a small in-process loop, no dropouts) and
returns the victim's masked vector as the server decodes it from the victim's message of
the masked-input round. Nothing secret is exposed that the server does not see anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from secagg.encoding import FixedPoint
from secagg.errors import ConfigurationError, ProtocolAbort
from secagg.packing import unpack
from secagg.protocols.base import SERVER_ID, Message
from secagg.protocols.bonawitz.messages import ROUND_MASKED_INPUT
from secagg.protocols.registry import SimulationParams, get_protocol, protocol_for_config

__all__ = ["masked_update_view", "observe_masked_input"]


def observe_masked_input(config: object, inputs: Mapping[int, np.ndarray], victim: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Run one session of ``config``'s protocol; return (victim's masked vector, total).

    ``inputs`` maps each of the protocol's client ids to its vector in Z_(2^bits); the
    masked vector is unpacked from the victim's masked-input message as the server receives
    it, and ``total`` is the protocol's aggregate (so a caller can check the session was a
    real, complete one).

    Raises:
        ConfigurationError: ``victim`` is not a client, or the protocol's masked-input
            message has no ``payload``/``bits``/``length`` fields.
        ProtocolAbort: the session did not finish.
    """
    spec = protocol_for_config(config)
    ids = list(spec.client_ids(config))
    if victim not in ids:
        raise ConfigurationError(f"victim {victim} is not a client of this session")
    server = spec.make_server(config)
    clients = {cid: spec.make_client(config, cid, _source(inputs, cid)) for cid in ids}
    seen: np.ndarray | None = None
    outgoing: list[Message] = server.start()
    while outgoing:
        replies: list[Message] = []
        for message in outgoing:
            for reply in clients[message.recipient].receive(
                    spec.decode(message.to_bytes(), SERVER_ID)):
                on_wire = spec.decode(reply.to_bytes(), message.recipient)
                if (reply.sender == victim and reply.recipient == SERVER_ID
                        and reply.round_name == ROUND_MASKED_INPUT):
                    seen = _vector_of(on_wire)
                replies.extend(server.receive(on_wire))
        outgoing = replies
    result = server.result
    if result is None or seen is None:
        raise ProtocolAbort("the session did not finish")
    return seen, result.total


def _source(inputs: Mapping[int, np.ndarray], cid: int) -> Callable[[], np.ndarray]:
    return lambda: inputs[cid]


def _vector_of(message: Message) -> np.ndarray:
    try:
        payload, bits, length = (message.payload, message.bits,  # type: ignore[attr-defined]
                                 message.length)  # type: ignore[attr-defined]
    except AttributeError:
        raise ConfigurationError("the masked-input message carries no packed vector") from None
    vector: np.ndarray = unpack(payload, bits, length)
    return vector


def masked_update_view(update: np.ndarray, *, protocol: str = "secagg+", bits: int = 32,
                       clients: int = 5, clip: float = 1.0) -> np.ndarray:
    """What the server makes of one client's upload under secure aggregation.

    The victim (the protocol's first client) contributes ``encode_weighted(update, 1)`` to a
    real session of ``protocol`` with ``clients - 1`` other clients (sending zeros); the
    victim's masked vector is taken off the wire and decoded as if it were an update, with
    the attacker even told the weight (1). Returns that float64 "update" (``update.size``
    values). The session's aggregate is checked to decode to ``update``, so the view comes
    from a session that really aggregates.

    Raises:
        ConfigurationError / HeadroomError: parameters the protocol or encoding refuses.
        ProtocolAbort: the session did not finish or did not aggregate correctly.
    """
    spec = get_protocol(protocol)
    config = spec.make_config(SimulationParams(clients=clients, dim=update.size + 1, bits=bits))
    ids = list(spec.client_ids(config))
    encoding = FixedPoint.for_precision(bits=bits, clip=clip, max_clients=len(ids))
    zeros = np.zeros_like(update, dtype=np.float64)
    inputs = {cid: encoding.encode_weighted(update if cid == ids[0] else zeros, 1.0)
              for cid in ids}
    seen, total = observe_masked_input(config, inputs, ids[0])
    mean, _ = encoding.decode_weighted(total)
    expected = np.clip(update, -clip, clip)
    if not np.allclose(mean * len(ids), expected, rtol=0, atol=len(ids) / encoding.scale):
        raise ProtocolAbort("the session's aggregate does not decode to the victim's update")
    view: np.ndarray = encoding.decode(seen[:-1])
    return view
