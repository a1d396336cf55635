"""Optional dependencies ("extras") and the one error a missing one raises.

A core install (``pip install secagg``) has numpy, cryptography, msgpack and tqdm: enough
for Bonawitz / SecAgg+, the simulator and every cost formula. The rest comes with an
extra: ``he`` (gmpy2, phe, tenseal: the homomorphic-encryption protocols), ``torch``,
``flower``, ``testing`` (hypothesis) and ``bench`` (matplotlib).

Code that needs an extra imports it where it is used, through :func:`require`, so that a
missing one surfaces as a :class:`MissingExtraError` naming the feature and the install
command (``secagg: threshold-paillier needs the 'he' extra: pip install 'secagg[he]'``),
never as a bare ``ModuleNotFoundError`` from deep inside. :func:`missing_extra` turns a
``ModuleNotFoundError`` raised elsewhere into the same error when the missing module
belongs to an extra (the command line's last line of defence).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from secagg.errors import ConfigurationError

__all__ = ["EXTRA_OF_MODULE", "MissingExtraError", "missing_extra", "require"]

EXTRA_OF_MODULE: dict[str, str] = {
    "gmpy2": "he",
    "phe": "he",
    "tenseal": "he",
    "torch": "torch",
    "flwr": "flower",
    "hypothesis": "testing",
    "matplotlib": "bench",
}
"""Top-level module -> the extra of ``pyproject.toml`` that installs it."""


class MissingExtraError(ConfigurationError, ImportError):
    """A feature needs an optional dependency that is not installed.

    A :class:`~secagg.errors.ConfigurationError` (the install, not a peer, is at fault;
    the command line exits 2) and an ``ImportError`` (``except ImportError`` around an
    optional import keeps working). ``feature`` is what was asked for, ``extra`` the
    extra that provides it, ``module`` the missing top-level module.
    """

    def __init__(self, feature: str, extra: str, module: str) -> None:
        self.feature = feature
        self.extra = extra
        self.module = module
        ConfigurationError.__init__(self, self.message)
        self.name = module  # ImportError's field: which module is missing
        self.msg = self.message

    @property
    def message(self) -> str:
        """One line: the feature, the extra and the command that installs it."""
        return (
            f"{self.feature} needs the '{self.extra}' extra: "
            f"pip install 'secagg[{self.extra}]' ({self.module} is not installed)"
        )

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type[MissingExtraError], tuple[str, str, str]]:
        return (type(self), (self.feature, self.extra, self.module))


def _top(name: str | None) -> str:
    return (name or "").partition(".")[0]


def missing_extra(exc: ModuleNotFoundError, feature: str) -> MissingExtraError | None:
    """The :class:`MissingExtraError` for ``exc`` when the module it misses belongs to an
    extra (:data:`EXTRA_OF_MODULE`), else None (a missing core module is a broken install
    or a bug, not a choice of extras)."""
    if isinstance(exc, MissingExtraError):
        return exc
    module = _top(exc.name)
    extra = EXTRA_OF_MODULE.get(module)
    return None if extra is None else MissingExtraError(feature, extra, module)


def require(module: str, extra: str | None = None, *, feature: str | None = None) -> ModuleType:
    """Import ``module`` (an optional dependency) and return it.

    ``extra`` defaults to the module's entry in :data:`EXTRA_OF_MODULE`; ``feature`` (what
    needs it, for the message) to the module's name. Raises MissingExtraError when the
    module, or a module it needs, is missing; any other import failure propagates.
    """
    top = _top(module)
    chosen = extra if extra is not None else EXTRA_OF_MODULE.get(top)
    if chosen is None:
        raise ConfigurationError(f"{module!r} is not an optional dependency of secagg")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if _top(exc.name) not in (top, *EXTRA_OF_MODULE):
            raise
        raise MissingExtraError(feature or top, chosen, _top(exc.name) or top) from exc
