"""Bonawitz et al. (CCS'17) secure aggregation with SecAgg+ (Bell et al., CCS'20) graphs.

The public face: :class:`Client`, :class:`Server`, :class:`ProtocolConfig` and
:func:`decode_message`; the registry entries ``bonawitz`` and ``secagg+`` live in
:mod:`secagg.protocols.bonawitz.spec`.
"""

from __future__ import annotations

from secagg.protocols.bonawitz.client import Client
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import decode_message
from secagg.protocols.bonawitz.server import Server

__all__ = ["Client", "ProtocolConfig", "Server", "decode_message"]
