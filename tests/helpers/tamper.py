"""Tamper hooks for :func:`tests.helpers.protocol.run_session` shared by the protocol tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from secagg.protocols.bonawitz.messages import RevealedShare, UnmaskingResponse, decode_message
from secagg.shamir import PRIME, pack_limb_shares, unpack_limb_shares
from tests.helpers.protocol import Tamper

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


def garble_share(share: bytes, shift: int = 1) -> bytes:
    """A revealed (compact) share moved off its polynomial in its first limb."""
    values = unpack_limb_shares(share).astype(np.int64)
    values[0] = (values[0] + shift) % PRIME
    return pack_limb_shares(values)
