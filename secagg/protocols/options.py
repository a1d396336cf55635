"""The parameters a protocol takes, with their ranges, declared as data.

Theory of operation. Every knob a transport may turn (the generic
:class:`~secagg.protocols.registry.SimulationParams` fields such as ``clients`` or
``threshold``, and the variants ``make_config`` takes, such as ``active``) is an *option*.
A :class:`~secagg.protocols.registry.ProtocolSpec` lists, in ``options``, the ones it takes,
each an :class:`Option` that states its type, its range (bounds may depend on the other
options: a threshold is at most the number of clients), extra rules (an even degree when
the number of clients is odd) and its default. Anything not listed is refused, with the
spec's reason (``refusals``). :func:`check_options` applies the table, so that every
caller (the command line, :func:`secagg.cost.estimate`) refuses the same values with the
same words, and a new protocol declares its own table instead of adding a case anywhere.

Texts (``help``, ``why``, rule and refusal texts) are templates: ``{clients}`` names the
option ``clients`` as the caller spells it (``--clients`` on the command line).
Options are checked in table order, so a bound may read any option listed before its own.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from secagg.errors import ConfigurationError
from secagg.protocols.limits import MAX_CLIENT_ID, MAX_VECTOR_LENGTH
from secagg.ring import MAX_BITS

__all__ = [
    "COMMON_OPTIONS",
    "Bound",
    "Context",
    "Option",
    "OptionError",
    "Rule",
    "Spelling",
    "check_value",
    "flag_of",
    "refusal",
    "spelled",
]

Context = Mapping[str, Any]
"""Every option of a protocol -> its value in this call (given, else the option's default)."""

Bound = int | float | Callable[[Context], int | float]
"""A fixed bound, or one computed from the other options."""

Spelling = Callable[[str], str]
"""Option name -> how the caller spells it (``dropout_fraction`` -> ``--dropout``)."""


class OptionError(ConfigurationError):
    """An option a protocol refuses: one it does not take, or a value out of its range.

    ``option`` is the option's name, ``flag`` the caller's spelling of it.
    """

    def __init__(self, message: str, *, option: str, flag: str) -> None:
        super().__init__(message)
        self.option = option
        self.flag = flag


@dataclass(frozen=True)
class Rule:
    """A condition beyond the range: ``holds(value, context)``; ``says`` (a template)
    states it, e.g. ``"an even number when {clients} is odd"``."""

    holds: Callable[[Any, Context], bool]
    says: str


@dataclass(frozen=True)
class Option:
    """How one protocol takes one option.

    ``kind`` is ``int``, ``float``, ``bool`` or ``str`` (``object``: any value, unchecked);
    ``low`` / ``high`` inclusive bounds (None: unbounded), ``why`` says where dependent
    bounds come from (a template, or a function of the context returning one);
    ``choices`` the values a ``str`` option takes; ``rules`` further conditions.
    ``default`` is the value when the option is not given (None: the protocol chooses,
    and its ``describe`` says what it chose). ``unless(context)`` returns a reason
    (template) when the option does not apply in this context, e.g. the corrupt fraction
    once a degree is fixed. ``cost_only``: only the cost model takes it (not
    ``make_config``).
    """

    help: str
    kind: type[Any] = int
    low: Bound | None = None
    high: Bound | None = None
    why: str | Callable[[Context], str] = ""
    choices: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    default: Any = None
    unless: Callable[[Context], str | None] | None = None
    cost_only: bool = False


_FLAG_NAMES = {"dropout_fraction": "dropout", "corrupt_fraction": "corrupt"}


def flag_of(name: str) -> str:
    """The command line's spelling of option ``name``: ``--clients``, ``--key-bits``,
    ``--dropout`` (for ``dropout_fraction``), ``--corrupt`` (``corrupt_fraction``)."""
    return "--" + _FLAG_NAMES.get(name, name).replace("_", "-")


def spelled(text: str, spell: Spelling) -> str:
    """``text`` with every ``{option}`` replaced by its spelling."""

    class _Names(dict[str, str]):
        def __missing__(self, key: str) -> str:
            return spell(key)

    return text.format_map(_Names())


def _bound(bound: Bound | None, context: Context) -> int | float | None:
    return bound(context) if callable(bound) else bound


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _kind_error(option: Option, value: object) -> str | None:
    """What ``value`` should have been when it is not of the option's kind, else None."""
    if option.kind is object:
        return None
    if option.kind is bool:
        return None if isinstance(value, bool) else "true or false"
    wanted = "an integer" if option.kind is int else "a number"
    if isinstance(value, bool):
        return wanted
    if option.kind is int:
        return None if isinstance(value, numbers.Integral) else wanted
    if option.kind is float:
        return None if isinstance(value, numbers.Real) else wanted
    if not isinstance(value, str) or (option.choices and value not in option.choices):
        return f"one of {', '.join(option.choices)}" if option.choices else "text"
    return None


def _number(value: int | float) -> str:
    return str(int(value)) if isinstance(value, numbers.Integral) else f"{value:g}"


def _range_text(option: Option, flag: str, context: Context, spell: Spelling) -> str:
    low, high = _bound(option.low, context), _bound(option.high, context)
    if low is not None and high is not None:
        text = f"{_number(low)} <= {flag} <= {_number(high)}"
    elif low is not None:
        text = f"{flag} >= {_number(low)}"
    elif high is not None:
        text = f"{flag} <= {_number(high)}"
    else:
        text = f"any {flag}"
    why = option.why(context) if callable(option.why) else option.why
    if why:
        text += f" ({spelled(why, spell)})"
    for rule in option.rules:
        text += ", " + spelled(rule.says, spell)
    return text


def check_value(
    protocol: str, name: str, option: Option, value: object, context: Context, spell: Spelling
) -> None:
    """Raise OptionError unless ``value`` is of the option's kind, within its bounds (NaN
    never is) and meets its rules, or when ``option.unless`` refuses it in ``context``.

    The message names the value and the range, in one style for every option:
    ``--threshold 0 is out of range: ckks takes 1 <= --threshold <= 5 (the committee size)``.
    """
    flag = spell(name)
    if option.unless is not None:
        reason = option.unless(context)
        if reason is not None:
            raise OptionError(
                f"{flag} does not apply to {protocol} {spelled(reason, spell)}",
                option=name,
                flag=flag,
            )
    wrong_kind = _kind_error(option, value)
    if wrong_kind is not None:
        raise OptionError(f"{flag} {_shown(value)} is not {wrong_kind}", option=name, flag=flag)
    if option.kind not in (int, float):
        return
    assert isinstance(value, numbers.Real)
    number = float(value) if option.kind is float else cast(int, value)
    low, high = _bound(option.low, context), _bound(option.high, context)
    inside = not (isinstance(number, float) and math.isnan(number))
    inside = inside and (low is None or number >= low) and (high is None or number <= high)
    if not inside or not all(rule.holds(value, context) for rule in option.rules):
        raise OptionError(
            f"{flag} {_shown(value)} is out of range: {protocol} takes "
            f"{_range_text(option, flag, context, spell)}",
            option=name,
            flag=flag,
        )


def refusal(protocol: str, name: str, reason: str | None, takers: tuple[str, ...],
            spell: Spelling) -> OptionError:
    """The error for an option ``protocol`` does not take: its reason (a template) and the
    protocols that take it."""
    flag = spell(name)
    why = f": {spelled(reason, spell)}" if reason else ""
    names = ", ".join(takers[:-1]) + " and " + takers[-1] if len(takers) > 1 else "".join(takers)
    who = f"{flag} applies to {names} only" if takers else "no protocol takes it"
    return OptionError(f"{flag} does not apply to {protocol}{why} ({who})", option=name, flag=flag)


COMMON_OPTIONS: dict[str, Option] = {
    "clients": Option("number of clients n", int, 2, MAX_CLIENT_ID),
    "dim": Option("vector length m", int, 1, MAX_VECTOR_LENGTH),
    "bits": Option("each value is in Z_(2^bits)", int, 1, MAX_BITS),
    "dropout_fraction": Option("fraction of the clients that drop", float, 0.0, 1.0, default=0.0),
}
"""The options every protocol takes, with the widest ranges (a spec narrows them)."""
