"""What the harness needs to know about a protocol: the :class:`ProtocolUnderTest` interface.

A target wraps one session of a sans-I/O protocol (its :class:`ClientProtocol` and
:class:`ServerProtocol` objects and their wire decoding) and tells the harness what the
protocol promises:

* :meth:`~ProtocolUnderTest.predict`: given who vanished in which round and whose answers
  never arrived, must the session abort, and if not, exactly which clients are in the sum
  (or "unknown");
* :meth:`~ProtocolUnderTest.reveals`: which secrets an outgoing client message discloses,
  and :meth:`~ProtocolUnderTest.reveal_threshold`: how many holders' disclosures of one
  owner's secret let the server reconstruct it;
* :meth:`~ProtocolUnderTest.masked_view`: the server's view of one client's masked input;
* :meth:`~ProtocolUnderTest.tamper_request` / :meth:`~ProtocolUnderTest.tamper_answer`:
  the protocol-specific moves of a malicious server or client (the harness does the
  generic ones, replays and garbled bytes, itself).

Two optional methods (the harness looks them up, a target may leave them out):
``make_faulty_client(client_id, vector, fault)`` builds a client that misbehaves itself
(a :class:`ClientFault` whose ``faulty_client`` is true: it deals or checks wrongly), and
``predict_faults(vanished, lost, faults)`` predicts the outcome with the faults injected
(who is left out, who must be blamed: :attr:`Prediction.blamed`); without it the harness
uses :meth:`~ProtocolUnderTest.predict` and the generic fault categories.

:class:`SpecTarget` implements it for any protocol in the registry (or any
:class:`~secagg.protocols.registry.ProtocolSpec` of your own) with the conservative answers:
nothing predicted, nothing revealed, no masked view. Subclass it to promise more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from secagg.errors import ConfigurationError
from secagg.protocols.base import ClientProtocol, Message, ServerProtocol
from secagg.protocols.registry import ProtocolSpec
from secagg.testing.model import ClientFault, DropoutModel, Quorum, ServerAttack

__all__ = [
    "UNKNOWN",
    "ConfigTarget",
    "Prediction",
    "ProtocolUnderTest",
    "SpecTarget",
    "TargetDefaults",
]


@dataclass(frozen=True)
class Prediction:
    """What a protocol promises for one dropout pattern.

    ``aborts`` is True (the session must end in ProtocolAbort), False (it must complete
    with exactly ``included`` in the sum) or None (the target does not say). ``blamed``:
    the faulty clients the result must blame (``predict_faults`` only); ``free``: included
    faulty clients whose contribution the protocol does not pin (their masked input is
    in the sum, but what it holds is theirs to choose): the total is then not checked.
    ``pinned`` False: the faults may change the whole total unseen, as the protocol's trust
    model allows (e.g. a bad decryption share that nothing cross-checks): it is not checked.
    """

    aborts: bool | None
    included: frozenset[int] | None = None
    blamed: frozenset[int] = frozenset()
    free: frozenset[int] = frozenset()
    pinned: bool = True


UNKNOWN = Prediction(None)


class ProtocolUnderTest(Protocol):
    """One session of a protocol, as the harness drives and judges it."""

    @property
    def name(self) -> str: ...

    @property
    def clients(self) -> tuple[int, ...]: ...

    @property
    def bits(self) -> int: ...

    @property
    def vector_length(self) -> int: ...

    @property
    def dropout_model(self) -> DropoutModel: ...

    def make_server(self) -> ServerProtocol: ...

    def make_client(self, client_id: int, vector: np.ndarray) -> ClientProtocol: ...

    def decode(self, data: bytes, sender: int) -> Message:
        """Decode bytes from the transport-authenticated ``sender``; DecodeError naming
        ``sender`` on anything malformed."""
        ...

    def predict(
        self, vanished: Mapping[int, str], lost: AbstractSet[tuple[int, str]]
    ) -> Prediction:
        """The promised outcome when client ``c`` vanished before answering its request of
        round ``vanished[c]``, and the answers ``(c, round)`` in ``lost`` never reached the
        server (their clients stayed), everyone else following the protocol."""
        ...

    def reveals(self, message: Message) -> Sequence[tuple[int, str]] | None:
        """``None`` if ``message`` (from a client) discloses no secret; else the
        (owner, secret kind) pairs it discloses a share of."""
        ...

    def reveal_threshold(self, owner: int, *, attacked: bool) -> int | None:
        """How many holders' disclosures of one of ``owner``'s secrets reconstruct it, when
        the protocol promises the server never gets two kinds (``None``: no promise). With
        ``attacked`` the server is malicious."""
        ...

    def masked_view(self, message: Message) -> np.ndarray | None:
        """The values of a client's masked input in Z_(2^bits), else ``None``."""
        ...

    def tamper_request(self, message: Message, attack: ServerAttack) -> list[Message] | None:
        """What a malicious server sends instead of ``message`` (``None``: the attack does
        not apply to this message)."""
        ...

    def tamper_answer(self, message: Message, fault: ClientFault) -> Message | None:
        """A protocol-specific fault applied to a client's answer (``None``: not applicable)."""
        ...


class TargetDefaults:
    """The conservative answers of a :class:`ProtocolUnderTest`: no secret revealed, no
    promise on reconstruction, no masked view, no protocol-specific move; and the short
    repr hypothesis prints falsifying examples with. Subclass it and override what your
    protocol promises more of."""

    disclosing_messages: int = 1
    """How many messages of one client may disclose secrets (1: a client answers the
    disclosing round once). The harness reads it with this default when a target lacks it."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints falsifying examples with this: the class's short repr."""
        printer.text(repr(self))

    def reveals(self, message: Message) -> Sequence[tuple[int, str]] | None:
        return None

    def reveal_threshold(self, owner: int, *, attacked: bool) -> int | None:
        return None

    def masked_view(self, message: Message) -> np.ndarray | None:
        return None

    def tamper_request(self, message: Message, attack: ServerAttack) -> list[Message] | None:
        return None

    def tamper_answer(self, message: Message, fault: ClientFault) -> Message | None:
        return None


class ConfigTarget(TargetDefaults):
    """:class:`TargetDefaults` for a target whose ``config`` carries ``clients``, ``bits``
    and ``vector_length`` itself (the library's protocol configs do)."""

    config: Any

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    @property
    def clients(self) -> tuple[int, ...]:
        return tuple(self.config.clients)

    @property
    def bits(self) -> int:
        return int(self.config.bits)

    @property
    def vector_length(self) -> int:
        return int(self.config.vector_length)


class SpecTarget(TargetDefaults):
    """A :class:`ProtocolUnderTest` for any protocol described by a ProtocolSpec.

    ``threshold`` (default 2) is the fewest clients every round needs; ``input_round``
    (default: the spec's ``dropout_round``) is where inputs are sent; ``predict`` an
    optional oracle (default: nothing predicted, only the sum of the included clients and
    the typed errors are checked). Raises ConfigurationError if ``config`` is not the
    spec's config type.
    """

    def __init__(
        self,
        spec: ProtocolSpec,
        config: Any,
        *,
        threshold: int = 2,
        input_round: str | None = None,
        predict: Callable[[Mapping[int, str], AbstractSet[tuple[int, str]]], Prediction]
        | None = None,
    ) -> None:
        if not isinstance(config, spec.config_type):
            raise ConfigurationError(f"{spec.name} does not take a {type(config).__name__}")
        self.spec = spec
        self.config = config
        self._threshold = threshold
        self._input_round = input_round or spec.dropout_round
        self._predict = predict

    def __repr__(self) -> str:
        return f"SpecTarget({self.spec.name}, {self.config!r})"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def clients(self) -> tuple[int, ...]:
        return tuple(self.spec.client_ids(self.config))

    @property
    def bits(self) -> int:
        return self.spec.bits(self.config)

    @property
    def vector_length(self) -> int:
        return self.spec.vector_length(self.config)

    @property
    def dropout_model(self) -> DropoutModel:
        everyone = Quorum(frozenset(self.clients), self._threshold)
        return DropoutModel(
            clients=self.clients,
            rounds=self.spec.round_names,
            input_round=self._input_round,
            quorums={r: everyone for r in self.spec.round_names},
        )

    def make_server(self) -> ServerProtocol:
        return self.spec.make_server(self.config)

    def make_client(self, client_id: int, vector: np.ndarray) -> ClientProtocol:
        return self.spec.make_client(self.config, client_id, lambda: vector)

    def decode(self, data: bytes, sender: int) -> Message:
        return self.spec.decode(data, sender)

    def predict(
        self, vanished: Mapping[int, str], lost: AbstractSet[tuple[int, str]]
    ) -> Prediction:
        return self._predict(vanished, lost) if self._predict is not None else UNKNOWN
