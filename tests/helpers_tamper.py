"""Tamper hooks for :func:`helpers_protocol.run_session` shared by the protocol tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from helpers_protocol import Tamper

from secagg.protocols.messages import RevealedShare, UnmaskingResponse, decode_message

SharesRewrite = Callable[[tuple[RevealedShare, ...]], tuple[RevealedShare, ...]]


def rewrite_self_mask_shares(target: int, rewrite: SharesRewrite) -> Tamper:
    """A tamper hook that re-encodes client ``target``'s unmasking response with its
    self-mask shares replaced by ``rewrite(shares)``; every other message passes unchanged.

    The hook asserts that ``target``'s unmasking message decodes as an UnmaskingResponse.
    """

    def tamper(sender: int, name: str, data: bytes) -> list[bytes]:
        if name == "unmasking" and sender == target:
            message = decode_message(data)
            assert isinstance(message, UnmaskingResponse)
            shares = rewrite(message.self_mask_shares)
            return [dataclasses.replace(message, self_mask_shares=shares).to_bytes()]
        return [data]

    return tamper
