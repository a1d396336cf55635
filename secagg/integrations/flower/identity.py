"""Node identities for active (malicious-server) mode over Flower: a registry of Ed25519 keys.

Theory of operation. Active mode (Bonawitz et al., CCS'17, the malicious-server variant)
needs a public-key infrastructure: every client signs its advertised keys and its
consistency check with a long-term Ed25519 key (:mod:`secagg.signing`) whose verify key the
other clients know *from a source the server does not control*; otherwise the server could
invent clients (a Sybil attack) and learn an honest client's input from a "sum" over it and
its puppets. Over Flower that source is a pair of files made once, offline, by whoever
admits nodes to the federation (:func:`generate_identities`):

* the **registry** (public, JSON): node name -> 32-byte verify key (hex). The ServerApp
  loads it to accept nodes; every SuperNode loads the same file to check that the
  identities a server puts in a session setup are all registered (and distinct);
* one **signing key** file per node (secret, JSON, written with mode 0600): the node's
  name and its 32-byte Ed25519 seed. Only that node's ClientApp reads it.

A Flower node id is chosen by the SuperLink when a SuperNode connects, so the registry
cannot be keyed by node id. Instead, the server asks each sampled node that it has not
identified yet to prove which registered key it holds: it sends a fresh challenge, and the
node signs (domain, session id, its node id, challenge) with its key (:func:`identify_proof`,
checked by :func:`check_identify_proof`). A node whose key is not registered, or whose
proof does not verify, is left out of the session (with the reason in the round report),
never fatal to the round.

Why not Flower's own SuperNode authentication keys (flwr 1.42 ``--auth-supernode-private-key``)?
They are ECDSA P-384 keys, while the protocol's signatures are Ed25519 (fixed in its wire
format); Flower enables them only with TLS and not in the simulation engine; and the
ClientApp process that runs the protocol never sees the SuperNode's private key. The two
mechanisms complement each other: Flower's authenticates the transport (which node id a
message comes from), this one the protocol's participants.

Nothing secret appears in a repr or a log: signing keys show only their fingerprint.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from secagg.errors import ConfigurationError, DecodeError, UsageError
from secagg.signing import VERIFY_KEY_BYTES, SigningKey, verify_signature

__all__ = [
    "REGISTRY_VERSION",
    "IdentityRegistry",
    "check_identify_proof",
    "generate_identities",
    "identify_proof",
    "load_signing_key",
]

REGISTRY_VERSION = 1
_MAX_FILE_BYTES = 16 * 2**20
_MAX_NAME = 128
_MAX_NODES = 1_000_000
_PROOF_DOMAIN = b"secagg/flower/identify/v1\x00"


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME or not name.isprintable():
        raise ConfigurationError(f"a node name must be 1 to {_MAX_NAME} printable characters")
    return name


def _read_json(path: str | os.PathLike[str], what: str) -> object:
    file = Path(path)
    try:
        with file.open("rb") as handle:
            data = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} {file}: {exc.strerror}") from None
    if len(data) > _MAX_FILE_BYTES:
        raise ConfigurationError(f"the {what} {file} is larger than {_MAX_FILE_BYTES} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigurationError(f"the {what} {file} is not valid JSON") from None


def _hex_bytes(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size:
        raise ConfigurationError(f"{what} must be {2 * size} hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ConfigurationError(f"{what} must be {2 * size} hex digits") from None


@dataclass(frozen=True)
class IdentityRegistry:
    """The public registry: node name -> Ed25519 verify key (32 bytes). No secret in it.

    Raises ConfigurationError for a bad name or key, or one key registered twice (two nodes
    sharing a key could sign for each other).
    """

    keys: Mapping[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.keys, Mapping) or len(self.keys) > _MAX_NODES:
            raise ConfigurationError("keys must map node names to verify keys")
        checked: dict[str, bytes] = {}
        for name, key in self.keys.items():
            if not isinstance(key, bytes) or len(key) != VERIFY_KEY_BYTES:
                raise ConfigurationError(f"the verify key of {name!r} must be 32 bytes")
            checked[_check_name(name)] = key
        if len(set(checked.values())) != len(checked):
            raise ConfigurationError("two node names share one verify key")
        object.__setattr__(self, "keys", checked)

    @property
    def verify_keys(self) -> frozenset[bytes]:
        """Every registered verify key."""
        return frozenset(self.keys.values())

    def name_of(self, verify_key: bytes) -> str | None:
        """The name registered with ``verify_key``, or None."""
        for name, key in self.keys.items():
            if key == verify_key:
                return name
        return None

    def __contains__(self, verify_key: object) -> bool:
        return verify_key in self.verify_keys

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"IdentityRegistry({len(self.keys)} nodes)"

    def to_json(self) -> str:
        """The registry file's text."""
        return json.dumps(
            {"version": REGISTRY_VERSION, "nodes": {n: k.hex() for n, k in self.keys.items()}},
            indent=1, sort_keys=True,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IdentityRegistry:
        """Read a registry file (:meth:`to_json`). Raises ConfigurationError if it cannot be
        read or is not a registry of this version."""
        obj = _read_json(path, "identity registry")
        if not isinstance(obj, dict) or obj.get("version") != REGISTRY_VERSION or not (
            isinstance(obj.get("nodes"), dict)
        ):
            raise ConfigurationError(f"{path} is not a version-{REGISTRY_VERSION} registry")
        return cls({_check_name(name): _hex_bytes(key, VERIFY_KEY_BYTES, f"the key of {name!r}")
                    for name, key in obj["nodes"].items()})


def load_signing_key(path: str | os.PathLike[str]) -> tuple[str, SigningKey]:
    """Read a node's signing key file: ``(name, key)``. Secret: never log the key.

    Raises ConfigurationError if the file cannot be read or is malformed.
    """
    obj = _read_json(path, "signing key file")
    if not isinstance(obj, dict) or obj.get("version") != REGISTRY_VERSION:
        raise ConfigurationError(f"{path} is not a version-{REGISTRY_VERSION} signing key file")
    name = _check_name(obj.get("name"))
    seed = _hex_bytes(obj.get("signing_key"), 32, "signing_key")
    try:
        return name, SigningKey.from_private_bytes(seed)
    except DecodeError:
        raise ConfigurationError("signing_key is not an Ed25519 seed") from None


def _write_secret(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only (refuses to overwrite)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def generate_identities(
    names: Sequence[str], directory: str | os.PathLike[str]
) -> IdentityRegistry:
    """The offline enrolment: a fresh key per name (CSPRNG), written to ``directory``.

    Writes ``registry.json`` (public: give it to the ServerApp and to every node) and
    ``<name>.key`` (secret, mode 0600: give each only to its node). Refuses to overwrite
    existing files. Raises ConfigurationError for bad or duplicate names.
    """
    names = [_check_name(n) for n in names]
    if len(set(names)) != len(names) or not names:
        raise ConfigurationError("give distinct node names")
    if any(os.sep in n or n.startswith(".") for n in names):
        raise ConfigurationError("a node name used as a file name cannot hold a path")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    existing = [p.name for p in (out / "registry.json", *(out / f"{n}.key" for n in names))
                if p.exists()]
    if existing:
        raise ConfigurationError(f"refusing to overwrite {existing} in {out}")
    keys = {name: SigningKey.generate() for name in names}
    registry = IdentityRegistry({name: key.verify_key for name, key in keys.items()})
    for name, key in keys.items():
        _write_secret(out / f"{name}.key", json.dumps(
            {"version": REGISTRY_VERSION, "name": name, "signing_key": key.private_bytes().hex()}
        ))
    with (out / "registry.json").open("x", encoding="utf-8") as handle:
        handle.write(registry.to_json())
    return registry


def _proof_message(session_id: bytes, node_id: int, challenge: bytes) -> bytes:
    return (_PROOF_DOMAIN + len(session_id).to_bytes(1, "big") + session_id
            + node_id.to_bytes(8, "big") + challenge)


def identify_proof(key: SigningKey, session_id: bytes, node_id: int, challenge: bytes) -> bytes:
    """The node's signature over (domain, session, its node id, the server's challenge)."""
    if not 0 <= node_id < 2**64:
        raise UsageError("a Flower node id is a 64-bit unsigned integer")
    return key.sign(_proof_message(session_id, node_id, challenge))


def check_identify_proof(verify_key: bytes, signature: bytes, session_id: bytes, node_id: int,
                         challenge: bytes, *, party: int) -> None:
    """Return if ``signature`` proves that node ``node_id`` holds ``verify_key``'s private key.

    Raises AuthenticationError / DecodeError (with ``party``) otherwise.
    """
    verify_signature(verify_key, _proof_message(session_id, node_id, challenge), signature,
                     party=party)


def _main(argv: Iterable[str]) -> NoReturn:
    """``python -m secagg.integrations.flower.identity DIRECTORY NAME [NAME ...]``."""
    args = list(argv)
    if len(args) < 2 or args[0].startswith("-"):
        print("usage: python -m secagg.integrations.flower.identity DIRECTORY NAME [NAME ...]",
              file=sys.stderr)
        raise SystemExit(2)
    try:
        registry = generate_identities(args[1:], args[0])
    except (ConfigurationError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"wrote {args[0]}/registry.json ({len(registry)} nodes) and one .key file per node")
    raise SystemExit(0)


if __name__ == "__main__":
    _main(sys.argv[1:])
