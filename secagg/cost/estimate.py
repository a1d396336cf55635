"""The cost front door: any registered protocol's model, by name, through its spec.

:func:`estimate` is what ``secagg cost`` prints: the protocol's
:class:`~secagg.cost.model.CostModel` (named by its registry spec, resolved by
:func:`cost_model_of`) evaluated with the defaults ``secagg simulate`` uses.
:func:`predict` adds seconds from unit costs measured now. Nothing here knows a protocol by
name: a new protocol needs only its spec and its cost model.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from secagg.cost.model import CostModel, CostParams
from secagg.cost.timing import predict_seconds
from secagg.errors import ConfigurationError
from secagg.protocols.options import flag_of, refusal
from secagg.protocols.registry import (
    ProtocolSpec,
    get_protocol,
    protocol_names,
    protocols_taking,
)

__all__ = ["cost_model_of", "cost_protocols", "estimate", "predict", "variant_refusal"]


def cost_model_of(spec: ProtocolSpec) -> CostModel:
    """The :class:`CostModel` that ``spec.cost_model`` (``"module:attribute"``) names.

    Raises ConfigurationError when the spec names none, or names something that is not a
    CostModel.
    """
    if spec.cost_model is None:
        raise ConfigurationError(f"protocol {spec.name!r} has no cost model")
    module_name, _, attribute = spec.cost_model.partition(":")
    model = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(model, CostModel):
        raise ConfigurationError(f"{spec.cost_model!r} is not a CostModel")
    return model


def cost_protocols() -> tuple[str, ...]:
    """Names of the registered protocols that have a cost model (loads every spec)."""
    return tuple(name for name in protocol_names() if get_protocol(name).cost_model is not None)


def variant_refusal(flag: str, variant: str, protocol: str = "this protocol") -> ConfigurationError:
    """The error for a variant (``--decryption``...) given to a protocol without it: names
    the protocols that take it."""
    return refusal(protocol, variant, None, protocols_taking(variant), lambda _: flag)


def estimate(
    protocol: str,
    *,
    clients: int,
    dim: int,
    bits: int = 32,
    dropout: float = 0.0,
    threshold: int | None = None,
    degree: int | None = None,
    active: bool = False,
    corrupt: float | None = None,
    key_bits: int | None = None,
    ciphertext_bytes: float | None = None,
    decryption: str | None = None,
) -> dict[str, Any]:
    """The cost model of ``protocol`` with the defaults ``secagg simulate`` uses.

    ``dropout`` is a fraction of the clients (``round(dropout * clients)`` drop, as
    :meth:`DropoutSchedule.from_rate`); ``degree`` is SecAgg+'s k or the HE committee size
    (default ``min(5, n)``); Bonawitz and SecAgg+ take their defaults of ``threshold`` and
    ``degree`` from :func:`~secagg.protocols.bonawitz.spec.graph_parameters` (mode-aware:
    ``active`` raises the minimum threshold), threshold Paillier a committee majority and
    CKKS 1. ``corrupt`` feeds SecAgg+'s parameter finder (default 0.05), ``key_bits`` is
    threshold Paillier's key size (default 2048), ``ciphertext_bytes`` CKKS's mean
    ciphertext size, ``decryption`` a committee decryption mode (threshold Paillier:
    ``"full"``, the default, or ``"balanced"``). Every argument is checked against the
    protocol's option table (:meth:`ProtocolSpec.check_options`, messages spell them as
    ``secagg cost`` flags): one the protocol does not take (``active`` for an HE protocol,
    ``degree`` for Bonawitz...) is refused. Returns the model's JSON-ready dict with
    ``"protocol"`` set.

    Raises ConfigurationError (an OptionError for an option) for an unknown protocol, one
    without a cost model, or any parameter the protocol or the model refuses.
    """
    spec = get_protocol(protocol)
    model = cost_model_of(spec)
    values: dict[str, Any] = {
        "clients": clients,
        "dim": dim,
        "bits": bits,
        "dropout_fraction": dropout,
        "threshold": threshold,
        "degree": degree,
        "active": True if active is True else (None if active is False else active),
        "corrupt_fraction": corrupt,
        "key_bits": key_bits,
        "ciphertext_bytes": ciphertext_bytes,
        "decryption": decryption,
    }
    spec.check_options(values, spell=flag_of)
    used = spec.context(values)
    params = CostParams(
        clients=clients,
        dim=dim,
        bits=bits,
        dropout=dropout,
        threshold=threshold,
        degree=degree,
        active=bool(active),
        corrupt=_or(used.get("corrupt_fraction"), 0.05),
        key_bits=_or(used.get("key_bits"), 2048),
        ciphertext_bytes=ciphertext_bytes,
        decryption=decryption,
    )
    result = model.estimate(params)
    result["protocol"] = protocol
    return result


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def predict(model: Mapping[str, Any], config: object = None) -> dict[str, Any]:
    """Predicted seconds for ``model`` (a result of :func:`estimate`, ``"protocol"`` set)
    from unit costs measured now, on this machine (:func:`secagg.cost.timing.predict_seconds`
    plus ``"unit_costs"``). ``config`` is the run's configuration when there is one (its key
    material is reused, see :attr:`CostModel.calibrate`).

    Raises ConfigurationError for an unknown protocol or one without a cost model.
    """
    units = cost_model_of(get_protocol(str(model["protocol"]))).calibrate(model, config)
    prediction = predict_seconds(model, units)
    prediction["unit_costs"] = units.to_dict()
    return prediction
