"""The shape of a client state, whatever the framework: flatten it to float64 and back.

:func:`~secagg.integrations.torch.mean.secure_weighted_mean` takes client states as a
framework already holds them, and returns the mean in the same form. A :class:`Structure`
records that form once, from the first client's state, and then checks every other state
against it:

* a mapping of named arrays (a PyTorch ``state_dict``, or a dict of numpy arrays): keys are
  ``str``; the mean is a ``dict`` in the first state's key order;
* a list or tuple of arrays (e.g. Flower's ``NDArrays``): entries are named ``"0"``, ``"1"``...;
  the mean is a ``list``;
* one array or tensor: one entry named ``""``; the mean is one array or tensor.

An entry is a ``torch.Tensor``, a ``numpy.ndarray`` or a numpy scalar of a real dtype
(floating, integer or boolean); anything else is refused with a :class:`ConfigurationError`
naming the client and the entry. Entries travel as float64 (lossless for every
float16/bfloat16/float32 value and every integer below 2^53) and come back in their
original type, dtype, shape and, for tensors, device: floating entries are rounded to
nearest, integer and boolean entries to the nearest integer (clamped to the dtype's range,
so nothing wraps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from secagg.errors import ConfigurationError

__all__ = ["Entry", "Structure"]

_EXACT_INT = 2**53
Kind = Literal["mapping", "sequence", "single"]


def _describe(value: object) -> str:
    return type(value).__name__


@dataclass(frozen=True)
class Entry:
    """One array of a state: its name, its slice of the flat vector and its format.

    ``dtype`` is a ``torch.dtype`` for a tensor, a ``numpy.dtype`` for an array; ``device``
    is the tensor's device (``None`` for an array); ``scalar`` marks a numpy scalar.
    """

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype | np.dtype[np.generic]
    device: torch.device | None
    offset: int
    size: int
    scalar: bool = False

    @property
    def is_integer(self) -> bool:
        """Whether the entry holds integers or booleans (its mean is rounded)."""
        if isinstance(self.dtype, torch.dtype):
            return not self.dtype.is_floating_point
        return self.dtype.kind in "iub"

    def rebuild(self, part: np.ndarray) -> torch.Tensor | np.ndarray:
        """The entry's values ``part`` (float64) in the entry's dtype, shape and device."""
        if self.is_integer:
            part = _rounded(part, self.dtype)
        if isinstance(self.dtype, torch.dtype):
            tensor = torch.from_numpy(np.array(part, dtype=np.float64))
            return tensor.to(dtype=self.dtype, device=self.device).reshape(self.shape)
        array = np.array(part, dtype=np.float64).astype(self.dtype).reshape(self.shape)
        result: np.ndarray = array[()] if self.scalar else array
        return result


def _rounded(part: np.ndarray, dtype: torch.dtype | np.dtype[np.generic]) -> np.ndarray:
    """Round to integers and clamp to the dtype's range (a float-to-int cast out of range is
    undefined behaviour; float64 holds integers exactly only up to 2^53)."""
    if dtype is torch.bool or (isinstance(dtype, np.dtype) and dtype.kind == "b"):
        lo, hi = 0, 1
    elif isinstance(dtype, torch.dtype):
        info = torch.iinfo(dtype)
        lo, hi = info.min, info.max
    else:
        np_info = np.iinfo(dtype)  # type: ignore[type-var]
        lo, hi = int(np_info.min), int(np_info.max)
    clipped: np.ndarray = np.clip(np.rint(part), max(lo, -_EXACT_INT), min(hi, _EXACT_INT))
    return clipped


def _checked_entry(client: object, name: str, value: object
                   ) -> tuple[tuple[int, ...], torch.dtype | np.dtype[np.generic],
                              torch.device | None]:
    """(shape, dtype, device) of a supported entry, else ConfigurationError."""
    label = f"client {client!r}: entry {name!r}" if name else f"client {client!r}"
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.is_quantized or value.is_sparse:
            raise ConfigurationError(f"{label} is a {value.dtype} tensor: only real dense "
                                     "tensors can be averaged")
        return tuple(value.shape), value.dtype, value.device
    if isinstance(value, np.ndarray | np.generic):
        if value.dtype.kind not in "fiub":
            raise ConfigurationError(f"{label} has dtype {value.dtype}: only real numbers "
                                     "can be averaged")
        return tuple(value.shape), value.dtype, None
    raise ConfigurationError(f"{label} is a {_describe(value)}, not a torch.Tensor or "
                             "numpy array")


def _items(client: object, state: object) -> tuple[Kind, list[tuple[str, object]]]:
    """The kind of ``state`` and its (name, value) entries, else ConfigurationError."""
    if isinstance(state, torch.Tensor | np.ndarray | np.generic):
        return "single", [("", state)]
    if isinstance(state, Mapping):
        for key in state:
            if not isinstance(key, str):
                raise ConfigurationError(f"client {client!r}: state keys must be str, got "
                                         f"{_describe(key)}")
        return "mapping", list(state.items())
    if isinstance(state, Sequence) and not isinstance(state, str | bytes):
        return "sequence", [(str(i), value) for i, value in enumerate(state)]
    raise ConfigurationError(f"client {client!r}: a state is a state_dict (mapping of "
                             "tensors or arrays), a list of arrays, or one array; got a "
                             f"{_describe(state)}")


@dataclass(frozen=True)
class Structure:
    """The layout of one client state (see the module docstring); ``size`` values in all."""

    kind: Kind
    entries: tuple[Entry, ...]
    size: int

    @classmethod
    def of(cls, state: object, *, client: object = 0) -> Structure:
        """Record the layout of ``state`` (``client`` only names it in errors).

        Raises:
            ConfigurationError: not a supported state, an unsupported entry, or no values.
        """
        kind, items = _items(client, state)
        entries: list[Entry] = []
        offset = 0
        for name, value in items:
            shape, dtype, device = _checked_entry(client, name, value)
            size = int(np.prod(shape, dtype=np.int64))
            entries.append(Entry(name=name, shape=shape, dtype=dtype, device=device,
                                 offset=offset, size=size,
                                 scalar=isinstance(value, np.generic)))
            offset += size
        if offset == 0:
            raise ConfigurationError(f"client {client!r}: the state holds no values")
        return cls(kind=kind, entries=tuple(entries), size=offset)

    @property
    def names(self) -> tuple[str, ...]:
        """Entry names in order."""
        return tuple(e.name for e in self.entries)

    def flatten(self, state: object, *, client: object = 0) -> np.ndarray:
        """The values of ``state`` as a new float64 vector of length ``size``.

        Raises:
            ConfigurationError: ``state`` is not of this structure (kind, names, shapes), or
                holds an unsupported entry; the message names ``client`` and the entry.
        """
        kind, items = _items(client, state)
        if kind != self.kind:
            raise ConfigurationError(f"client {client!r}: expected a {self.kind} state like "
                                     f"the first client's, got a {_describe(state)}")
        values = dict(items)
        if len(values) != len(self.entries) or set(values) != set(self.names):
            missing = sorted(set(self.names) - set(values))
            extra = sorted(set(values) - set(self.names))
            if kind == "sequence":
                raise ConfigurationError(f"client {client!r}: {len(values)} arrays, the first "
                                         f"client has {len(self.entries)}")
            raise ConfigurationError(f"client {client!r}: keys differ from the first "
                                     f"client's: missing {missing[:5]}, unexpected {extra[:5]}")
        out = np.empty(self.size, dtype=np.float64)
        for entry in self.entries:
            value = values[entry.name]
            shape, _, _ = _checked_entry(client, entry.name, value)
            if shape != entry.shape:
                what = f"entry {entry.name!r}" if entry.name else "the array"
                raise ConfigurationError(f"client {client!r}: {what} has shape {shape}, "
                                         f"expected {entry.shape}")
            target = out[entry.offset:entry.offset + entry.size]
            if isinstance(value, torch.Tensor):
                target[:] = value.detach().to("cpu", torch.float64).reshape(-1).numpy()
            else:
                target[:] = np.asarray(value).reshape(-1)
        return out

    def rebuild(self, vector: np.ndarray) -> object:
        """``vector`` (float64, length ``size``) in this structure: a ``dict``, a ``list`` or
        one array/tensor, every entry in its recorded dtype, shape and device."""
        parts = [e.rebuild(vector[e.offset:e.offset + e.size]) for e in self.entries]
        if self.kind == "single":
            return parts[0]
        if self.kind == "sequence":
            return parts
        return dict(zip(self.names, parts, strict=True))
