"""t-of-n Shamir sharing of 32-byte secrets, and the server's bulk tools over it.

* :mod:`secagg.shamir.sharing`: the field, :class:`Share`, sharing and reconstruction, the
  compact limb form that travels inside the protocols;
* :mod:`secagg.shamir.batch`: many shares at once (vectorized interpolation per holder set);
* :mod:`secagg.shamir.decoding`: Reed-Solomon decoding that finds lying holders.

The names of :mod:`secagg.shamir.sharing` are re-exported here: ``from secagg.shamir import
share_secrets``.
"""

from __future__ import annotations

from secagg.shamir.sharing import (
    LIMB_BITS,
    LIMB_SHARE_BYTES,
    LIMBS,
    PRIME,
    SECRET_BYTES,
    SHARE_BYTES,
    SHARING_ID_BYTES,
    Share,
    ShareArrays,
    lagrange_coefficients_at_zero,
    limbs_to_secrets,
    pack_limb_shares,
    parse_limb_shares,
    parse_shares,
    reconstruct_secret,
    reconstruct_secrets,
    share_secrets,
    unpack_limb_shares,
)

__all__ = [
    "LIMBS",
    "LIMB_BITS",
    "LIMB_SHARE_BYTES",
    "PRIME",
    "SECRET_BYTES",
    "SHARE_BYTES",
    "SHARING_ID_BYTES",
    "Share",
    "ShareArrays",
    "lagrange_coefficients_at_zero",
    "limbs_to_secrets",
    "pack_limb_shares",
    "parse_limb_shares",
    "parse_shares",
    "reconstruct_secret",
    "reconstruct_secrets",
    "share_secrets",
    "unpack_limb_shares",
]
