"""Flatten a Flower ``ArrayRecord`` (plus chosen metrics) into one float64 vector and back.

Secure aggregation sums one flat vector per client; a Flower model is an ``ArrayRecord``
of named NumPy arrays, and a training reply also carries a ``MetricRecord``. An
:class:`ArrayLayout` records the names, shapes and dtypes of the arrays, in record order,
followed by the names of the metrics that are aggregated securely (as weighted means,
like the arrays), so that the server and every client agree on where each value lives.

The server takes the layout from the global model it sends; each client checks that its
trained arrays have exactly that layout before anything is encoded (a client whose model
does not match refuses instead of contributing a misaligned vector).

Floating and integer arrays are supported; an integer array is averaged as float64 and
rounded back to the nearest integer on the way back. float64 holds every float16/float32
value and every integer below 2^53 exactly, so flatten/unflatten round trips are lossless.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from flwr.app import Array, ArrayRecord

from secagg.errors import ConfigurationError, DecodeError

__all__ = ["ArrayLayout", "ArraySpec"]

_FLOAT_KINDS = frozenset("f")
_INT_KINDS = frozenset("iu")
_MAX_NAME = 256
_MAX_ENTRIES = 100_000
_MAX_DIMS = 32


@dataclass(frozen=True)
class ArraySpec:
    """One named array of the model: its shape and NumPy dtype string (e.g. ``"<f4"``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


def _check_dtype(name: str, dtype: np.dtype[np.generic]) -> str:
    if dtype.kind not in _FLOAT_KINDS | _INT_KINDS:
        raise ConfigurationError(
            f"array {name!r} has dtype {dtype}: only float and integer arrays are aggregated"
        )
    return dtype.str


@dataclass(frozen=True)
class ArrayLayout:
    """Where each model array and each secure metric lives in the flat vector.

    ``arrays`` are laid out first, in order, each flattened in C order; ``metrics`` follow,
    one element each. Equality of two layouts means the vectors line up element by element.
    """

    arrays: tuple[ArraySpec, ...]
    metrics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [spec.name for spec in self.arrays]
        if len(set(names)) != len(names):
            raise ConfigurationError("array names must be unique")
        if len(set(self.metrics)) != len(self.metrics):
            raise ConfigurationError("metric names must be unique")
        if self.size < 1:
            raise ConfigurationError("nothing to aggregate: no array elements and no metrics")

    @classmethod
    def from_record(cls, record: ArrayRecord, metrics: Sequence[str] = ()) -> ArrayLayout:
        """The layout of ``record`` (in its key order) followed by ``metrics``.

        Raises ConfigurationError for an unsupported dtype or an empty layout.
        """
        specs = []
        for name, array in record.items():
            # The array itself, not its metadata: legacy (Parameters) records leave the
            # dtype and shape fields empty.
            values = array.numpy()
            specs.append(ArraySpec(name, tuple(int(d) for d in values.shape),
                                   _check_dtype(name, values.dtype)))
        return cls(tuple(specs), tuple(metrics))

    @property
    def array_size(self) -> int:
        """Number of array elements (the vector length without the metrics)."""
        return sum(spec.size for spec in self.arrays)

    @property
    def size(self) -> int:
        """Length of the flat vector: array elements plus one per metric."""
        return self.array_size + len(self.metrics)

    def flatten(self, record: ArrayRecord, metrics: Mapping[str, object]) -> np.ndarray:
        """The float64 vector of ``record`` and the layout's metrics, in layout order.

        Raises ConfigurationError if ``record`` does not have exactly this layout's names
        and shapes, or if a metric is missing or not a finite real number.
        """
        if list(record.keys()) != [spec.name for spec in self.arrays]:
            raise ConfigurationError("the trained arrays do not have the global model's names")
        out = np.empty(self.size, dtype=np.float64)
        offset = 0
        for spec in self.arrays:
            values = record[spec.name].numpy()
            if tuple(values.shape) != spec.shape:
                raise ConfigurationError(
                    f"array {spec.name!r} has shape {values.shape}, expected {spec.shape}"
                )
            _check_dtype(spec.name, values.dtype)
            out[offset : offset + spec.size] = values.reshape(-1)
            offset += spec.size
        for name in self.metrics:
            value = metrics.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(f"metric {name!r} is missing or not a number")
            out[offset] = float(value)
            offset += 1
        if not np.all(np.isfinite(out)):
            raise ConfigurationError("the update holds NaN or infinite values")
        return out

    def unflatten(self, vector: np.ndarray) -> tuple[ArrayRecord, dict[str, float]]:
        """The arrays (in their original dtypes; integers rounded) and metrics of ``vector``.

        Raises ConfigurationError if ``vector`` does not have the layout's length.
        """
        if vector.ndim != 1 or vector.shape[0] != self.size:
            raise ConfigurationError(f"expected a vector of length {self.size}")
        arrays: dict[str, Array] = {}
        offset = 0
        for spec in self.arrays:
            chunk = vector[offset : offset + spec.size].reshape(spec.shape)
            dtype = np.dtype(spec.dtype)
            if dtype.kind in _INT_KINDS:
                info = np.iinfo(dtype)
                chunk = np.clip(np.rint(chunk), info.min, info.max)
            arrays[spec.name] = Array(np.array(chunk, dtype=dtype, order="C"))
            offset += spec.size
        metrics = {name: float(vector[offset + i]) for i, name in enumerate(self.metrics)}
        return ArrayRecord(arrays), metrics

    # -- wire form (inside the setup message; decoded strictly on the client) -----------

    def to_wire(self) -> list[object]:
        """A msgpack-ready form: ``[[[name, shape, dtype], ...], [metric, ...]]``."""
        return [[[s.name, list(s.shape), s.dtype] for s in self.arrays], list(self.metrics)]

    @classmethod
    def from_wire(cls, obj: object, *, max_size: int) -> ArrayLayout:
        """Decode :meth:`to_wire` output received from the server.

        Raises DecodeError (party 0, the server) on any malformed entry, an unsupported
        dtype, or a layout longer than ``max_size`` elements.
        """
        try:
            arrays_obj, metrics_obj = _pair(obj)
            if not isinstance(arrays_obj, list) or len(arrays_obj) > _MAX_ENTRIES:
                raise ValueError("arrays")
            specs = [_spec_from_wire(entry) for entry in arrays_obj]
            if not isinstance(metrics_obj, list) or len(metrics_obj) > _MAX_ENTRIES:
                raise ValueError("metrics")
            metrics = tuple(_name(m) for m in metrics_obj)
            layout = cls(tuple(specs), metrics)
        except (ValueError, TypeError, ConfigurationError) as exc:
            raise DecodeError(f"malformed model layout: {exc}", party=0) from None
        if layout.size > max_size:
            raise DecodeError(
                f"model layout of {layout.size} elements exceeds the limit {max_size}", party=0
            )
        return layout


def _pair(obj: object) -> tuple[object, object]:
    if not isinstance(obj, list) or len(obj) != 2:
        raise ValueError("layout must be a pair")
    return obj[0], obj[1]


def _name(obj: object) -> str:
    if not isinstance(obj, str) or not 0 < len(obj) <= _MAX_NAME:
        raise ValueError("bad name")
    return obj


def _spec_from_wire(entry: object) -> ArraySpec:
    if not isinstance(entry, list) or len(entry) != 3:
        raise ValueError("array entry must be [name, shape, dtype]")
    name, shape, dtype = entry
    if not isinstance(shape, list) or len(shape) > _MAX_DIMS:
        raise ValueError("bad shape")
    dims = []
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 2**31:
            raise ValueError("bad dimension")
        dims.append(d)
    if not isinstance(dtype, str) or len(dtype) > 8:
        raise ValueError("bad dtype")
    parsed = np.dtype(dtype)  # TypeError on an unknown dtype string
    return ArraySpec(_name(name), tuple(dims), _check_dtype(str(name), parsed))
