"""Flatten a PyTorch ``state_dict`` into one float64 vector and back.

Secure aggregation sums flat vectors; a model is a mapping of named tensors. A
:class:`StateLayout` records, once, where each entry of a ``state_dict`` lives in the
flat vector, with its shape, dtype and device, so that a vector can be turned back into
tensors exactly like the originals.

Which entries travel in the vector:

* every floating-point parameter and buffer (float16, bfloat16, float32, float64);
* integer and boolean buffers (BatchNorm's ``num_batches_tracked``) depend on
  ``integer_buffers``: ``"average"`` (the default, as in
  :class:`~secagg.integrations.torch.fedavg.SecureFedAvg`) carries them as float64 values
  and rounds them to the nearest integer on the way back (so a weighted average of integer
  deltas becomes an integer step of the global counter); ``"keep"`` leaves them out of the
  vector and copies them from a reference state (the global model) on the way back.

float64 represents every float16/bfloat16/float32 value and every integer below 2^53
exactly, so a flatten/unflatten round trip is lossless. Complex tensors are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from secagg.errors import ConfigurationError

_EXACT_INT = 2**53
IntegerPolicy = Literal["keep", "average"]
StateDict = Mapping[str, torch.Tensor]

__all__ = ["IntegerPolicy", "StateDict", "StateLayout", "TensorSpec"]


@dataclass(frozen=True)
class TensorSpec:
    """Where one ``state_dict`` entry lives: its slice of the flat vector and its format.

    ``offset`` is ``-1`` for an entry kept out of the vector.
    """

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    offset: int

    @property
    def numel(self) -> int:
        """Number of elements of the tensor."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def in_vector(self) -> bool:
        """Whether the entry travels in the flat vector."""
        return self.offset >= 0

    @property
    def is_floating(self) -> bool:
        """Whether the tensor is floating point (else integer or boolean)."""
        return self.dtype.is_floating_point


def _check_supported(name: str, tensor: object) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise ConfigurationError(f"state entry {name!r} is not a tensor")
    if tensor.is_complex():
        raise ConfigurationError(f"state entry {name!r}: complex tensors are not supported")
    return tensor


@dataclass(frozen=True)
class StateLayout:
    """The flat-vector layout of one model's ``state_dict`` (names in ``state_dict`` order).

    Build it with :meth:`from_state`; it then checks every state it flattens against the
    recorded names and shapes, and raises :class:`ConfigurationError` on any mismatch.
    """

    specs: tuple[TensorSpec, ...]
    size: int
    integer_buffers: IntegerPolicy

    @classmethod
    def from_state(cls, state: StateDict, *, integer_buffers: IntegerPolicy = "average"
                   ) -> StateLayout:
        """Record the layout of ``state``.

        Raises:
            ConfigurationError: an entry is not a tensor or is complex, the state is empty,
                or ``integer_buffers`` is not ``"keep"`` or ``"average"``.
        """
        if integer_buffers not in ("keep", "average"):
            raise ConfigurationError(f"integer_buffers must be 'keep' or 'average', "
                                     f"not {integer_buffers!r}")
        if len(state) == 0:
            raise ConfigurationError("empty state_dict")
        specs: list[TensorSpec] = []
        offset = 0
        for name, value in state.items():
            tensor = _check_supported(name, value)
            travels = tensor.dtype.is_floating_point or integer_buffers == "average"
            specs.append(TensorSpec(name=name, shape=tuple(tensor.shape), dtype=tensor.dtype,
                                    device=tensor.device, offset=offset if travels else -1))
            if travels:
                offset += tensor.numel()
        return cls(specs=tuple(specs), size=offset, integer_buffers=integer_buffers)

    @property
    def names(self) -> tuple[str, ...]:
        """Entry names, in ``state_dict`` order."""
        return tuple(s.name for s in self.specs)

    @property
    def integer_mask(self) -> np.ndarray:
        """Boolean vector of length ``size``: True where an integer/boolean entry lies."""
        mask = np.zeros(self.size, dtype=bool)
        for s in self.specs:
            if s.in_vector and not s.is_floating:
                mask[s.offset:s.offset + s.numel] = True
        return mask

    def _checked(self, state: StateDict) -> StateDict:
        if set(state.keys()) != set(self.names):
            missing = sorted(set(self.names) - set(state.keys()))
            extra = sorted(set(state.keys()) - set(self.names))
            raise ConfigurationError(f"state does not match the layout: missing {missing[:5]}, "
                                     f"unexpected {extra[:5]}")
        for s in self.specs:
            tensor = _check_supported(s.name, state[s.name])
            if tuple(tensor.shape) != s.shape:
                raise ConfigurationError(f"state entry {s.name!r} has shape "
                                         f"{tuple(tensor.shape)}, expected {s.shape}")
        return state

    def flatten(self, state: StateDict, *, out: np.ndarray | None = None) -> np.ndarray:
        """The entries of ``state`` that travel, as one float64 vector of length ``size``.

        ``out`` (float64, length ``size``) is filled and returned when given, so a caller
        flattening every round reuses one buffer. Values are copied, never aliased.

        Raises:
            ConfigurationError: ``state`` or ``out`` does not match the layout.
        """
        self._checked(state)
        if out is None:
            out = np.empty(self.size, dtype=np.float64)
        elif out.shape != (self.size,) or out.dtype != np.float64:
            raise ConfigurationError(f"out must be float64 of shape ({self.size},)")
        for s in self.specs:
            if s.in_vector:
                src = state[s.name].detach().reshape(-1).to("cpu", torch.float64)
                out[s.offset:s.offset + s.numel] = src.numpy()
        return out

    def delta(self, local: StateDict, reference: StateDict, *,
              out: np.ndarray | None = None) -> np.ndarray:
        """``flatten(local) - flatten(reference)``: an update as a delta against the global model.

        Raises:
            ConfigurationError: either state does not match the layout.
        """
        out = self.flatten(local, out=out)
        out -= self.flatten(reference)
        return out

    def unflatten(self, vector: np.ndarray, *, reference: StateDict | None = None
                  ) -> dict[str, torch.Tensor]:
        """Tensors with the recorded names, shapes, dtypes and devices, read from ``vector``.

        Floating entries are cast (round to nearest) to their dtype; integer entries carried
        in the vector are rounded to the nearest integer first. Entries kept out of the vector
        are cloned from ``reference``.

        Raises:
            ConfigurationError: ``vector`` has the wrong length or is not finite, or
                ``reference`` is missing while some entries are kept out of the vector.
        """
        vector = np.asarray(vector)
        if vector.shape != (self.size,):
            raise ConfigurationError(f"vector has shape {vector.shape}, expected ({self.size},)")
        if not np.all(np.isfinite(vector)):
            raise ConfigurationError("vector has non-finite values")
        if reference is not None:
            self._checked(reference)
        result: dict[str, torch.Tensor] = {}
        for s in self.specs:
            if not s.in_vector:
                if reference is None:
                    raise ConfigurationError(f"entry {s.name!r} is kept out of the vector: "
                                             "a reference state is needed")
                result[s.name] = reference[s.name].detach().clone()
                continue
            part = vector[s.offset:s.offset + s.numel]
            if not s.is_floating:
                # Clamp first: a float-to-integer cast out of range is undefined behaviour.
                # (float64 holds integers exactly only up to 2^53.)
                info = torch.iinfo(torch.uint8 if s.dtype == torch.bool else s.dtype)
                lo = max(info.min, -_EXACT_INT)
                hi = 1 if s.dtype == torch.bool else min(info.max, _EXACT_INT)
                part = np.clip(np.rint(part), lo, hi)
            tensor = torch.from_numpy(np.array(part, dtype=np.float64))
            result[s.name] = tensor.to(dtype=s.dtype, device=s.device).reshape(s.shape)
        return result

    def apply_delta(self, reference: StateDict, delta: np.ndarray) -> dict[str, torch.Tensor]:
        """``unflatten(flatten(reference) + delta)``: the global model moved by ``delta``.

        Raises:
            ConfigurationError: as :meth:`unflatten` and :meth:`flatten`.
        """
        delta = np.asarray(delta)
        if delta.shape != (self.size,):
            raise ConfigurationError(f"delta has shape {delta.shape}, expected ({self.size},)")
        moved = self.flatten(reference)
        moved += delta
        return self.unflatten(moved, reference=reference)
