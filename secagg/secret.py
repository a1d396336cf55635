"""Objects that hold secret material refuse to be pickled or copied.

Theory of operation
-------------------
Every class whose instances can hold secret material (private keys, seeds, key shares,
Shamir shares, PRG state, encryption randomness, a protocol client's input or the shares it
holds) derives from :class:`SecretHolder` and names, on its class line, the explicit way its
secret may leave the object::

    class KeyPair(SecretHolder, export="KeyPair.private_bytes() / KeyPair.from_private_bytes()"):

The mixin overrides every hook the standard serialization and copy paths go through:

* ``__reduce_ex__`` and ``__reduce__``: ``pickle`` (every protocol, the C and the Python
  pickler), ``copyreg``, ``shelve``, ``multiprocessing`` (its ``ForkingPickler``) and the
  third-party picklers built on them (cloudpickle, dill) all reduce an instance through one of
  these;
* ``__getstate__``: libraries that read an object's state directly;
* ``__copy__`` and ``__deepcopy__``: :mod:`copy`.

Each raises :class:`~secagg.errors.SecretSerializationError` (a ``TypeError``, as pickle's
own refusal is, and a :class:`~secagg.errors.UsageError`) naming the class and its safe
alternative. ``marshal`` needs nothing: it refuses every object that is not a built-in value.

Why copies are refused too. Pickling is the main risk (the bytes end up on disk, in a task
queue, in another process's memory). In-process copies are refused as well, because several
secret holders carry ONE-TIME material whose duplication is a break in itself: a copied
:class:`~secagg.prg.Prg` replays its keystream (the same mask twice: a two-time pad), a
copied :class:`~secagg.he.paillier.RandomnessPool` hands the same r^n to two encryptions
(their quotient reveals the difference of the plaintexts), and two copies of a protocol
client mid-round can answer one round twice (masking two inputs with the same masks, or
revealing both shares of a peer to a server that asks each copy once). Deep copies of
immutable secrets (a Shamir share) would be harmless, but one rule that holds for every
secret holder is easier to check, and to trust, than a per-class judgement: a legitimate
duplicate goes through the explicit, visible export (``to_bytes`` / ``from_bytes``,
``private_bytes``, ``to_state_bytes``).

What this cannot stop: code that reads private attributes on purpose, or registers its own
reducer for a class (``copyreg.pickle``, a ``Pickler.dispatch_table``). It stops the
accidents: an object pickled because it sat in a structure that was pickled or deep-copied.
``tests/test_secrets.py`` finds every class of ``secagg`` whose instances can hold secrets
and checks that it is a SecretHolder, so a new one cannot slip through.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn, SupportsIndex

from secagg.errors import SecretSerializationError

__all__ = ["REFUSING_HOOKS", "SecretHolder", "refuses_serialization"]

REFUSING_HOOKS = ("__reduce_ex__", "__reduce__", "__getstate__", "__copy__", "__deepcopy__")
"""The hooks a SecretHolder defines and a subclass may not redefine."""


def _refuse(obj: object, verb: str) -> NoReturn:
    cls = type(obj)
    export = getattr(cls, "secret_export", "") or "none: build a new one"
    raise SecretSerializationError(
        f"{cls.__name__} holds secret material and cannot be {verb}; "
        f"safe alternative: {export}"
    )


class SecretHolder:
    """Mixin of every class whose instances can hold secret material (see the module doc).

    ``export`` (a class keyword, required unless a base class set it) names the explicit,
    safe way to move the secret, e.g. ``"Client.to_state_bytes() / Client.from_state_bytes()"``;
    it appears in every refusal. Raises ``TypeError`` at class creation when a subclass
    redefines one of :data:`REFUSING_HOOKS` or names no export.
    """

    __slots__ = ()
    secret_export: ClassVar[str] = ""
    """The safe alternative the refusal names."""

    def __init_subclass__(cls, *, export: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if export is not None:
            if not isinstance(export, str) or not export:
                raise TypeError(f"{cls.__name__}: export must be a non-empty str")
            cls.secret_export = export
        if not cls.secret_export:
            raise TypeError(f"{cls.__name__}: a SecretHolder must name its export")
        redefined = [name for name in REFUSING_HOOKS if name in vars(cls)]
        if redefined:
            raise TypeError(f"{cls.__name__} is a SecretHolder and may not define {redefined}")

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        _refuse(self, "pickled")

    def __reduce__(self) -> NoReturn:
        _refuse(self, "pickled")

    def __getstate__(self) -> NoReturn:
        _refuse(self, "serialized")

    def __copy__(self) -> NoReturn:
        _refuse(self, "copied")

    def __deepcopy__(self, memo: object) -> NoReturn:
        _refuse(self, "copied")


def refuses_serialization(cls: type) -> bool:
    """True when ``cls`` is a SecretHolder whose every refusing hook is the mixin's own
    (no subclass, decorator or later assignment put another one in its place)."""
    if not (isinstance(cls, type) and issubclass(cls, SecretHolder)):
        return False
    return all(
        getattr(cls, name, None) is getattr(SecretHolder, name) for name in REFUSING_HOOKS
    )
