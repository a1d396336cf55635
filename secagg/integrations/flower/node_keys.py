"""What a node holds beyond its data: its identity, the registry, the committee's key.

A SuperNode's ClientApp runs in a fresh process for every message, so the client mod
loads the node's key material each time, from files named in the node's config
(``flower-supernode --node-config "secagg-signing-key='...' secagg-registry='...'"``):

==========================  ================================================================
node config key             file
==========================  ================================================================
``secagg-signing-key``      the node's Ed25519 signing key (secret; active mode)
``secagg-registry``         the identity registry (public; active mode)
``secagg-he-public-key``    the decryption committee's public key (public; threshold HE)
``secagg-he-key-share``     this node's key share (secret; committee members only)
==========================  ================================================================

Keys that a deployment does not use are simply absent. The public files are what the node
trusts: it refuses a session whose identities are not in its registry, or whose public key
is not its committee's (the server could otherwise decrypt individual inputs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from secagg.errors import ConfigurationError, DecodeError
from secagg.integrations.flower.identity import IdentityRegistry, load_signing_key
from secagg.secret import SecretHolder
from secagg.signing import SigningKey

if TYPE_CHECKING:
    from secagg.he.threshold_paillier import KeyShare, ThresholdPublicKey

__all__ = [
    "HE_KEY_SHARE_KEY",
    "HE_PUBLIC_KEY_KEY",
    "REGISTRY_KEY",
    "SIGNING_KEY_KEY",
    "NodeKeys",
    "deal_committee_keys",
    "load_he_public_key",
]

SIGNING_KEY_KEY = "secagg-signing-key"
REGISTRY_KEY = "secagg-registry"
HE_PUBLIC_KEY_KEY = "secagg-he-public-key"
HE_KEY_SHARE_KEY = "secagg-he-key-share"
_MAX_KEY_FILE = 16 * 2**20


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} {path}: {exc.strerror}") from None
    if len(data) > _MAX_KEY_FILE:
        raise ConfigurationError(f"the {what} {path} is too large")
    return data


def load_he_public_key(path: str | os.PathLike[str]) -> ThresholdPublicKey:
    """The committee's threshold-Paillier public key (``ThresholdPublicKey.to_bytes``).
    Raises ConfigurationError if it cannot be read or decoded."""
    from secagg.he.threshold_paillier import ThresholdPublicKey

    try:
        return ThresholdPublicKey.from_bytes(_read(path, "public key file"))
    except DecodeError as exc:
        raise ConfigurationError(f"{path} is not a threshold public key: {exc}") from None


@dataclass(frozen=True, repr=False)
class NodeKeys(SecretHolder, export="none: load the key files again in the other process"):
    """A node's key material (each part optional). Never shown: the repr names parts only."""

    name: str | None = None
    signing_key: SigningKey | None = None
    registry: IdentityRegistry | None = None
    he_public_key: ThresholdPublicKey | None = None
    key_share: KeyShare | None = None

    def __repr__(self) -> str:
        parts = [p for p in ("signing_key", "registry", "he_public_key", "key_share")
                 if getattr(self, p) is not None]
        return f"NodeKeys(name={self.name!r}, has={parts})"

    @classmethod
    def from_node_config(cls, config: Mapping[str, object]) -> NodeKeys:
        """Load the files the node config names (see the module docstring).

        Raises ConfigurationError if a named file cannot be read or decoded, or a key
        share is given without its public key.
        """
        def path(key: str) -> str | None:
            value = config.get(key)
            if value is None or value == "":
                return None
            if not isinstance(value, str):
                raise ConfigurationError(f"node config {key} must be a file path")
            return value

        name = signing = registry = public = share = None
        if (p := path(SIGNING_KEY_KEY)) is not None:
            name, signing = load_signing_key(p)
        if (p := path(REGISTRY_KEY)) is not None:
            registry = IdentityRegistry.load(p)
        if (p := path(HE_PUBLIC_KEY_KEY)) is not None:
            public = load_he_public_key(p)
        if (p := path(HE_KEY_SHARE_KEY)) is not None:
            if public is None:
                raise ConfigurationError(
                    f"{HE_KEY_SHARE_KEY} needs {HE_PUBLIC_KEY_KEY} (the share's public key)")
            from secagg.he.threshold_paillier import KeyShare

            try:
                share = KeyShare.from_bytes(_read(p, "key share file"), public)
            except DecodeError as exc:
                raise ConfigurationError(f"{p} is not a key share of that key: {exc}") from None
        return cls(name=name, signing_key=signing, registry=registry, he_public_key=public,
                   key_share=share)


def deal_committee_keys(
    directory: str | os.PathLike[str], *, holders: int, threshold: int, key_bits: int = 2048,
) -> ThresholdPublicKey:
    """An offline key ceremony for threshold Paillier over Flower (the trusted dealer).

    Writes ``public_key.bin`` (public: the ServerApp and every node load it) and
    ``share-<i>.key`` for i = 1..holders (secret, mode 0600: give each to one committee
    node only). Run it on a machine that is NOT the aggregator and delete the shares there
    afterwards: whoever holds t shares can decrypt every client's upload. Refuses to
    overwrite files. Raises ConfigurationError for invalid (holders, threshold, key_bits).
    """
    from secagg.he.threshold_paillier import deal_threshold_keys

    out = Path(directory)
    targets = [out / "public_key.bin", *(out / f"share-{i}.key" for i in range(1, holders + 1))]
    existing = [p.name for p in targets if p.exists()]
    if existing:
        raise ConfigurationError(f"refusing to overwrite {existing} in {out}")
    public, shares = deal_threshold_keys(key_bits, threshold=threshold, holders=holders)
    out.mkdir(parents=True, exist_ok=True)
    for share in shares:
        fd = os.open(out / f"share-{share.index}.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(share.to_bytes())
    with (out / "public_key.bin").open("xb") as handle:
        handle.write(public.to_bytes())
    return public
