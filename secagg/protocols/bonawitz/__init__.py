"""Bonawitz et al. (CCS'17) secure aggregation with SecAgg+ (Bell et al., CCS'20) graphs.

The public face: :class:`Client`, :class:`Server`, :class:`ProtocolConfig` and
:func:`decode_message`; the registry entries ``bonawitz`` and ``secagg+`` live in
:mod:`secagg.protocols.bonawitz.spec`.

Where to read: :mod:`~secagg.protocols.bonawitz.rounds` (states and the one transition
table of each side, mode rows included), then ``client`` / ``server`` (the handlers the
table names), ``messages`` (the wire), ``config`` / ``graph`` / ``params`` (setup),
``server_unmasking`` (round 4 on the server) and ``client_state`` (saving a client).
"""

from __future__ import annotations

from secagg.protocols.bonawitz.client import Client
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import decode_message
from secagg.protocols.bonawitz.server import Server

__all__ = ["Client", "ProtocolConfig", "Server", "decode_message"]
