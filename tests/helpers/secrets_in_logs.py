"""Does a secret ever reach a log? Capture the logs of a session, harvest the secrets the
parties held during it, and search the one for the other.

Theory of operation. :func:`captured_logs` attaches a handler to the ``secagg`` logger at
DEBUG (every ``secagg.*`` logger propagates to it) and keeps each record as text: the
message with its arguments, the logger name, any ``extra`` fields, exception and stack
text. :class:`SecretHarvest` walks party objects (clients, servers, the simulation's
config with its key material) through their private attributes and collects the secret
material they hold, by type: X25519 / Ed25519 private keys (``KeyPair``, ``SigningKey``),
Shamir shares' values, threshold-Paillier key shares, threshold-CKKS key share deliveries,
a CKKS context with its secret key,
and any bytes, array or big int kept under a name that says secret (``seed``, ``key``,
``share``, ``secret``, ``mask``, ``private``, ``channel``, ``input``; names that say
public, verify, session, fingerprint or digest are left out). Harvest *during* the session
(:func:`watched_spec` wraps a spec so that every party is harvested after each call):
protocols wipe secrets once they are done with them. :func:`leaks` renders each secret in
the forms a careless log line would show it (hex, the first and last 8 bytes in hex, the
``repr`` of the bytes, base64, an int in decimal and hex, a share's first limbs as
numbers) and returns the forms found in the logs.

Reusable for any transport (the simulator, Flower, torch): capture, harvest the parties
you can reach, then ``assert not leaks(records, harvest)``.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

__all__ = [
    "SecretHarvest",
    "captured_logs",
    "leaks",
    "secret_forms",
    "watched_spec",
]

_SECRET_NAME = re.compile(r"seed|key|share|secret|mask|private|channel|input", re.I)
_PUBLIC_NAME = re.compile(r"public|verif|session|fingerprint|digest|config|peers", re.I)
_STANDARD_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
_MIN_BYTES = 8
_MIN_INT = 2**64


class _Collect(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.name, record.getMessage()]
        parts += [
            f"{key}={value!r}"
            for key, value in vars(record).items()
            if key not in _STANDARD_RECORD_FIELDS
        ]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        self.sink.append(" | ".join(parts))


@contextlib.contextmanager
def captured_logs(logger: str = "secagg") -> Iterator[list[str]]:
    """Inside: every record of ``logger`` and its children, at DEBUG, as text (the list
    fills as records arrive). The logger's level and handlers are restored on exit."""
    sink: list[str] = []
    target = logging.getLogger(logger)
    handler = _Collect(sink)
    previous = target.level
    target.setLevel(logging.DEBUG)
    target.addHandler(handler)
    try:
        yield sink
    finally:
        target.removeHandler(handler)
        target.setLevel(previous)


def _attributes(obj: object) -> Iterator[tuple[str, Any]]:
    seen: set[str] = set()
    for name, value in getattr(obj, "__dict__", {}).items():
        seen.add(name)
        yield name, value
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name not in seen and hasattr(obj, name):
                seen.add(name)
                yield name, getattr(obj, name)


def _varied(value: bytes) -> bool:
    """At least 4 distinct byte values: a zeroed buffer is no secret, and its hex (a run of
    zeros) would match innocent text."""
    return len(set(value)) >= 4


class SecretHarvest:
    """The secret material found in the objects given to :meth:`add` (bytes and ints)."""

    def __init__(self) -> None:
        self.secrets: set[bytes] = set()
        self.numbers: set[int] = set()
        self.limbs: set[tuple[int, ...]] = set()
        self._ckks_seen: set[int] = set()

    def __len__(self) -> int:
        return len(self.secrets) + len(self.numbers) + len(self.limbs)

    def add(self, obj: object) -> None:
        """Harvest ``obj`` and everything it holds."""
        self._walk(obj, secret=False, depth=0, seen=set())

    def _bytes(self, value: bytes) -> None:
        if len(value) >= _MIN_BYTES and _varied(value):
            self.secrets.add(bytes(value))

    def _walk(self, obj: object, *, secret: bool, depth: int, seen: set[int]) -> None:
        if depth > 8 or id(obj) in seen:
            return
        if isinstance(obj, (bytes, bytearray)):
            if secret:
                self._bytes(bytes(obj))
            return
        if isinstance(obj, bool) or obj is None or isinstance(obj, (str, float)):
            return
        if isinstance(obj, int) or type(obj).__name__ == "mpz":
            if secret and int(obj) >= _MIN_INT:  # type: ignore[call-overload]
                self.numbers.add(int(obj))  # type: ignore[call-overload]
            return
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            if secret and obj.size:
                self._bytes(obj.tobytes())
            return
        private = getattr(obj, "_private", None)
        raw = getattr(private, "private_bytes_raw", None)
        if callable(raw):  # KeyPair, SigningKey: the X25519 / Ed25519 private key
            self._bytes(raw())
        kind = type(obj).__name__
        if kind == "Share" and isinstance(getattr(obj, "values", None), np.ndarray):
            values = obj.values  # type: ignore[attr-defined]
            self._bytes(values.tobytes())
            if len(set(values[:4].tolist())) == 4:
                self.limbs.add(tuple(int(v) for v in values[:4]))
            return
        if kind == "KeyShareDelivery" and isinstance(getattr(obj, "value", None), np.ndarray):
            self._bytes(obj.value.tobytes())  # type: ignore[attr-defined]  # a threshold-CKKS Shamir share
            return
        if kind == "KeyShare":
            self.numbers.add(int(obj._secret))  # type: ignore[attr-defined]
            return
        if kind == "CkksContext" and getattr(obj, "has_secret_key", False):
            self._ckks(obj)
            return
        if isinstance(obj, dict):
            for key, value in obj.items():
                name = key if isinstance(key, str) else ""
                if _PUBLIC_NAME.search(name):
                    continue
                named = secret or bool(_SECRET_NAME.search(name))
                self._walk(value, secret=named, depth=depth + 1, seen=seen)
            return
        if isinstance(obj, (list, tuple, set, frozenset)):
            for value in obj:
                self._walk(value, secret=secret, depth=depth + 1, seen=seen)
            return
        if not type(obj).__module__.startswith(("secagg", "tests")):
            return
        for name, value in _attributes(obj):
            if _PUBLIC_NAME.search(name):
                continue
            named_secret = secret or bool(_SECRET_NAME.search(name))
            self._walk(value, secret=named_secret, depth=depth + 1, seen=seen)

    def _ckks(self, context: Any) -> None:
        """Windows of the secret serialization (SEAL compresses it: any logged rendering
        of the secret context contains them)."""
        if id(context) in self._ckks_seen:
            return
        self._ckks_seen.add(id(context))
        blob = context.serialize(include_secret_key=True)
        for offset in np.linspace(len(blob) // 2, len(blob) - 32, 4).astype(int):
            self._bytes(blob[offset : offset + 24])


def secret_forms(secret: bytes | int | tuple[int, ...]) -> list[str]:
    """How a log line could show ``secret``: hex (whole, first and last 8 bytes), the
    ``repr`` of the bytes (its first 24 characters), base64; an int in decimal and hex;
    a share's first limbs as a list of numbers."""
    if isinstance(secret, tuple):
        return [", ".join(str(v) for v in secret), " ".join(str(v) for v in secret)]
    if isinstance(secret, int):
        return [str(secret)[:24], format(secret, "x")[:24]]
    forms = [secret.hex(), base64.b64encode(secret).decode()]
    forms += [part.hex() for part in (secret[:8], secret[-8:]) if _varied(part)]
    escaped = repr(secret)[2:-1]
    if len(escaped) >= 24:
        forms.append(escaped[:24])
    return forms


def leaks(records: Iterable[str], harvest: SecretHarvest) -> list[str]:
    """The secret forms (:func:`secret_forms`) found in ``records``, empty when none."""
    text = "\n".join(records)
    lowered = text.lower()
    found: list[str] = []
    items: list[bytes | int | tuple[int, ...]] = [*harvest.secrets, *harvest.numbers]
    items += list(harvest.limbs)
    for secret in items:
        for form in secret_forms(secret):
            haystack = lowered if form.isalnum() and form == form.lower() else text
            if form and form in haystack:
                found.append(form)
    return found


class _Watched:
    """A party whose state is harvested after each call that may change it."""

    _CALLS = frozenset({"receive", "start", "close_round"})

    def __init__(self, party: Any, harvest: SecretHarvest) -> None:
        self._party = party
        self._harvest = harvest
        harvest.add(party)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._party, name)
        if name not in self._CALLS or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attribute(*args, **kwargs)
            finally:
                self._harvest.add(self._party)

        return call


def watched_spec(spec: Any, harvest: SecretHarvest) -> Any:
    """``spec`` (a ProtocolSpec) whose parties are harvested into ``harvest`` when made
    and after every ``start`` / ``receive`` / ``close_round``."""
    make_client: Callable[..., Any] = spec.make_client
    make_server: Callable[..., Any] = spec.make_server
    return dataclasses.replace(
        spec,
        make_client=lambda config, cid, source: _Watched(make_client(config, cid, source), harvest),
        make_server=lambda config: _Watched(make_server(config), harvest),
    )
