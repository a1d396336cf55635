"""The harness catches what it promises to catch: every invariant fails on a broken party.

Each test breaks one thing on purpose (a transport, a server, a client) around the real
Bonawitz state machines or the toy protocol of ``simulator_toy``, and asserts that
:func:`secagg.testing.harness.run` raises InvariantViolation with the right diagnosis;
the same run with the unbroken party passes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pytest

from secagg.errors import ConfigurationError, ProtocolAbort, ProtocolViolation, UsageError
from secagg.packing import pack
from secagg.protocols.base import AggregationResult, Message
from secagg.protocols.bonawitz.client import Client
from secagg.protocols.bonawitz.config import ProtocolConfig
from secagg.protocols.bonawitz.messages import MaskedInput, UnmaskingRequest, UnmaskingResponse
from secagg.protocols.bonawitz.server import Server
from secagg.sim.simulator import DropoutSchedule
from secagg.testing import (
    BonawitzTarget,
    ClientFault,
    InvariantViolation,
    Network,
    ServerAttack,
    SpecTarget,
    run,
)
from secagg.testing.bonawitz import MASK_KEY
from tests.helpers.simulator_toy import ToyConfig, ToyMessage, toy_spec


def make_inputs(target: BonawitzTarget | SpecTarget, seed: int = 0) -> dict[int, np.ndarray]:
    """Small values (headroom respected, so the top bit of every input is zero)."""
    rng = np.random.default_rng(seed)
    high = (1 << target.bits) // (2 * len(target.clients))
    dtype = np.uint32 if target.bits <= 32 else np.uint64
    return {c: rng.integers(0, high, target.vector_length).astype(dtype) for c in target.clients}


def config(n: int = 5, t: int = 3, *, length: int = 8, degree: int | None = None) -> ProtocolConfig:
    return ProtocolConfig.create(
        list(range(1, n + 1)), threshold=t, bits=16, vector_length=length, degree=degree
    )


class Broken(BonawitzTarget):
    """A BonawitzTarget whose server or clients are replaced by broken wrappers."""

    def __init__(
        self, cfg: ProtocolConfig, *, server: type[Server] = Server, client: type = Client
    ) -> None:
        super().__init__(cfg)
        self._server_cls, self._client_cls = server, client

    def make_server(self) -> Server:
        return self._server_cls(self.config, threads=1)

    def make_client(self, client_id: int, vector: np.ndarray) -> Client:
        client: Client = self._client_cls(self.config, client_id, vector)
        return client


# --- outcome and sum -------------------------------------------------------------------


class OffByOneServer(Server):
    """Adds 1 to the first value of the total."""

    _cached: AggregationResult | None = None

    @property
    def result(self) -> AggregationResult | None:
        real = super().result
        if real is not None and self._cached is None:
            total = real.total.copy()
            total[0] += 1
            self._cached = dataclasses.replace(real, total=total)
        return self._cached


def test_a_wrong_sum_is_caught() -> None:
    target = Broken(config(), server=OffByOneServer)
    run(BonawitzTarget(target.config), make_inputs(target))
    with pytest.raises(InvariantViolation, match="not the sum of the included clients"):
        run(target, make_inputs(target))


def test_an_abort_with_enough_clients_is_caught() -> None:
    cfg = config(6, 4)
    strict = dataclasses.replace(cfg, threshold=5)  # a server off by one on t

    class StrictServer(Server):
        def __init__(self, _: ProtocolConfig, *, threads: int | None = None) -> None:
            super().__init__(strict, threads=threads)

    schedule = DropoutSchedule({"masked_input": frozenset({5, 6})})  # exactly t remain
    run(cfg, make_inputs(Broken(cfg)), schedule)
    with pytest.raises(InvariantViolation, match=r"aborted .* although enough clients"):
        run(Broken(cfg, server=StrictServer), make_inputs(Broken(cfg)), schedule)


class NeverAbortServer(Server):
    """Gives up silently instead of aborting: publishes an empty sum."""

    _gave_up: AggregationResult | None = None

    def close_round(self) -> list[Message]:
        try:
            return super().close_round()
        except ProtocolAbort:
            zeros = np.zeros(self._config.vector_length, dtype=self._config.dtype)
            excluded = dict.fromkeys(self._config.clients, "gave up")
            self._gave_up = AggregationResult(zeros, frozenset(), excluded)
            return []

    @property
    def done(self) -> bool:
        return self._gave_up is not None or super().done

    @property
    def result(self) -> AggregationResult | None:
        return self._gave_up or super().result


def test_a_completion_with_too_few_clients_is_caught() -> None:
    cfg = config(6, 4)
    schedule = DropoutSchedule({"masked_input": frozenset({4, 5, 6})})  # t - 1 remain
    assert run(cfg, make_inputs(Broken(cfg)), schedule).abort is not None
    with pytest.raises(InvariantViolation, match="too few clients remained: it must abort"):
        run(Broken(cfg, server=NeverAbortServer), make_inputs(Broken(cfg)), schedule)


def test_a_lossy_transport_is_caught() -> None:
    target = BonawitzTarget(config())
    seen: list[int] = []

    def lossy(data: bytes, sender: int, recipient: int) -> list[bytes]:
        seen.append(sender)
        return [] if len(seen) == 7 else [data]  # silently loses the 7th message

    with pytest.raises(InvariantViolation, match="wrong clients: missing"):
        run(target, make_inputs(target), transport=lossy)


# --- privacy ---------------------------------------------------------------------------


class LeakyClient(Client):
    """Answers Unmasking with an extra 'self-mask' share of every dropped peer."""

    def receive(self, message: Message) -> list[Message]:
        replies = super().receive(message)
        out: list[Message] = []
        for reply in replies:
            if isinstance(reply, UnmaskingResponse) and reply.key_shares:
                extra = reply.self_mask_shares + reply.key_shares
                reply = dataclasses.replace(reply, self_mask_shares=extra)
            out.append(reply)
        return out


def test_a_client_revealing_both_secrets_is_caught() -> None:
    target = Broken(config(), client=LeakyClient)
    schedule = DropoutSchedule({"masked_input": frozenset({2})})
    with pytest.raises(InvariantViolation, match="disclosed shares of both"):
        run(target, make_inputs(target), schedule)


class ForgetfulClient(Client):
    """Answers every Unmasking request, however many arrive."""

    _answer: list[Message] | None = None

    def receive(self, message: Message) -> list[Message]:
        if isinstance(message, UnmaskingRequest) and self._answer is not None:
            return self._answer
        replies = super().receive(message)
        if isinstance(message, UnmaskingRequest):
            self._answer = replies
        return replies


def test_a_client_answering_unmasking_twice_is_caught() -> None:
    cfg = config()
    replay = ServerAttack("replay", "unmasking", frozenset({1}))
    run(cfg, make_inputs(Broken(cfg)), server_attacks=[replay])  # the real client refuses
    with pytest.raises(InvariantViolation, match="disclosed secrets in 2 messages"):
        run(Broken(cfg, client=ForgetfulClient), make_inputs(Broken(cfg)), server_attacks=[replay])


class TrustingTarget(BonawitzTarget):
    """Claims privacy against a malicious server where SecAgg+ semi-honest does not."""

    def reveal_threshold(self, owner: int, *, attacked: bool) -> int | None:
        return self.config.threshold


def test_the_server_gathering_both_secrets_is_caught() -> None:
    # Semi-honest SecAgg+ with 2t <= k + 1: a server that tells two holders "the victim
    # dropped" gets t shares of its mask key while the others reveal t shares of b.
    cfg = config(6, 2, degree=4)
    victim = 1
    camp = frozenset(sorted(cfg.neighbours_of(victim))[:2])
    attack = ServerAttack("swap_lists", "unmasking", camp, victim)
    inputs = make_inputs(BonawitzTarget(cfg))
    report = run(cfg, inputs, server_attacks=[attack])  # no promise here: passes
    assert report.attacked
    with pytest.raises(InvariantViolation, match="can unmask that client's input"):
        run(TrustingTarget(cfg), inputs, server_attacks=[attack])


# --- blame -----------------------------------------------------------------------------


class FaultRewritingServer(Server):
    """A server whose result reports ``rewrite(faults)`` instead of its real faults (the
    rewritten result is made once, so every read sees the same object)."""

    def rewrite(self, faults: Mapping[int, str]) -> Mapping[int, str]:
        raise NotImplementedError

    @property
    def result(self) -> AggregationResult | None:
        real = super().result
        if real is None:
            return None
        if not hasattr(self, "_cached"):
            self._cached = dataclasses.replace(real, faults=self.rewrite(real.faults))
        return self._cached


class BlamingServer(FaultRewritingServer):
    """Blames client 1 for nothing."""

    def rewrite(self, faults: Mapping[int, str]) -> Mapping[int, str]:
        return {**faults, 1: "made up"}


def test_blaming_an_honest_client_is_caught() -> None:
    target = Broken(config(), server=BlamingServer)
    with pytest.raises(InvariantViolation, match=r"honest clients \[1\] were blamed"):
        run(target, make_inputs(target))


class AmnesicServer(FaultRewritingServer):
    """Forgets every fault it recorded."""

    def rewrite(self, faults: Mapping[int, str]) -> Mapping[int, str]:
        return {}


def test_an_unattributed_bad_message_is_caught() -> None:
    cfg = config()
    fault = ClientFault(2, "share_keys", "duplicate")
    report = run(cfg, make_inputs(Broken(cfg)), client_faults=[fault])
    assert report.result is not None and 2 in report.result.faults
    with pytest.raises(InvariantViolation, match=r"clients \[2\] were not attributed"):
        run(Broken(cfg, server=AmnesicServer), make_inputs(Broken(cfg)), client_faults=[fault])


class MisattributingClient(Client):
    def receive(self, message: Message) -> list[Message]:
        if isinstance(message, UnmaskingRequest):
            raise ProtocolViolation("blames a peer for the server's message", party=3)
        return super().receive(message)


class CrashingClient(Client):
    def receive(self, message: Message) -> list[Message]:
        if isinstance(message, UnmaskingRequest):
            raise KeyError("unexpected")
        return super().receive(message)


@pytest.mark.parametrize(
    ("client", "match"),
    [(MisattributingClient, "blamed party 3"), (CrashingClient, "raised KeyError")],
)
def test_a_client_error_of_the_wrong_kind_is_caught(client: type, match: str) -> None:
    target = Broken(config(), client=client)
    with pytest.raises(InvariantViolation, match=match):
        run(target, make_inputs(target))


def test_refusing_an_honest_server_is_caught() -> None:
    cfg = config()
    other = ProtocolConfig.create(cfg.clients, threshold=3, bits=16, vector_length=8)

    class StrangerClient(Client):  # a client configured for another session
        def __init__(self, _: ProtocolConfig, client_id: int, vector: np.ndarray) -> None:
            super().__init__(other, client_id, vector)

    target = Broken(cfg, client=StrangerClient)
    with pytest.raises(InvariantViolation, match="refused a request of an honest server"):
        run(target, make_inputs(target))


# --- termination ---------------------------------------------------------------------


class CrashingServer(Server):
    def receive(self, message: Message) -> list[Message]:
        if isinstance(message, MaskedInput):
            raise IndexError("boom")
        return super().receive(message)


class StuckServer(Server):
    def close_round(self) -> list[Message]:
        return []


def test_a_crashing_or_stuck_server_is_caught() -> None:
    cfg = config()
    with pytest.raises(InvariantViolation, match="server raised IndexError"):
        run(Broken(cfg, server=CrashingServer), make_inputs(Broken(cfg)))
    schedule = DropoutSchedule({"share_keys": frozenset({4})})
    with pytest.raises(InvariantViolation, match="no progress after its deadline"):
        run(Broken(cfg, server=StuckServer), make_inputs(Broken(cfg)), schedule)


# --- uniformity and other protocols ----------------------------------------------------


class ToyTarget(SpecTarget):
    """The cleartext toy protocol: its 'masked' input is the input itself."""

    def masked_view(self, message: Message) -> np.ndarray | None:
        if isinstance(message, ToyMessage) and message.round_name == "upload":
            return np.frombuffer(message.payload, dtype=np.uint64)
        return None


def test_an_unmasked_input_is_caught_and_a_masked_one_passes() -> None:
    toy = ToyTarget(toy_spec(), ToyConfig(clients=3, dim=256, bits=16))
    with pytest.raises(InvariantViolation, match="masked input is not uniform"):
        run(toy, make_inputs(toy))
    target = BonawitzTarget(config(3, 2, length=256))
    report = run(target, make_inputs(target))
    assert len(report.log.views) == 3 and all(v.size == 256 for v in report.log.views.values())


class UnmaskedClient(Client):
    """Sends its input in the clear as its 'masked' input."""

    def __init__(self, cfg: ProtocolConfig, client_id: int, vector: np.ndarray) -> None:
        super().__init__(cfg, client_id, vector)
        self._plain = vector.copy()

    def receive(self, message: Message) -> list[Message]:
        replies = super().receive(message)
        return [
            dataclasses.replace(r, payload=pack(self._plain, r.bits))
            if isinstance(r, MaskedInput)
            else r
            for r in replies
        ]


def test_a_bonawitz_client_that_does_not_mask_is_caught() -> None:
    target = Broken(config(3, 2, length=128), client=UnmaskedClient)
    with pytest.raises(InvariantViolation, match="masked input is not uniform"):
        run(target, make_inputs(target))


def test_spec_target_drives_any_registered_protocol() -> None:
    target = SpecTarget(toy_spec(), ToyConfig(clients=4, dim=5, bits=40))
    schedule = DropoutSchedule({"upload": frozenset({2})})
    report = run(target, make_inputs(target), schedule)
    assert report.result is not None and report.result.included == {1, 3, 4}
    broken = SpecTarget(toy_spec(), ToyConfig(clients=4, dim=5, bits=40, wrong_total=True))
    with pytest.raises(InvariantViolation, match="not the sum"):
        run(broken, make_inputs(broken))
    with pytest.raises(ConfigurationError):
        SpecTarget(toy_spec(), config())


# --- the network itself ----------------------------------------------------------------


def test_bad_arguments_are_configuration_errors() -> None:
    cfg = config()
    inputs = make_inputs(BonawitzTarget(cfg))
    with pytest.raises(ConfigurationError):
        run(cfg, {1: inputs[1]})
    with pytest.raises(ConfigurationError):
        run(cfg, {**inputs, 1: np.full(8, 1 << 16, dtype=np.uint32)})
    with pytest.raises(ConfigurationError):
        run(cfg, inputs, DropoutSchedule({"no_such_round": frozenset({1})}))
    with pytest.raises(ConfigurationError):
        run(cfg, inputs, client_faults=[ClientFault(9, "unmasking", "junk")])
    with pytest.raises(ConfigurationError):
        ClientFault(1, "unmasking", "explode")
    with pytest.raises(ConfigurationError):
        ServerAttack("both_shares", "unmasking", frozenset())


def test_step_by_step_network_and_late_clients() -> None:
    cfg = config(5, 3)
    network = Network(cfg, make_inputs(BonawitzTarget(cfg)))
    network.start()
    assert len(network.pending) == 5 and network.running
    with pytest.raises(UsageError):
        network.start()
    while network.pending and network.pending[0].round_name == "advertise_keys":
        network.deliver()
    # Share keys: two clients answer, then the deadline passes with three requests in flight.
    network.deliver()
    network.deliver()
    network.deliver(len(network.pending) - 1)
    network.deliver(len(network.pending) - 1)
    network.deadline()
    assert {c for c, _ in network.log.late} == {3, 4, 5}
    network.run_to_end()
    report = network.report()
    assert isinstance(report.abort, ProtocolAbort)  # 2 < t = 3 shared their keys
    report.check()


def test_reports_hide_vectors() -> None:
    cfg = config(length=64)
    report = run(cfg, make_inputs(BonawitzTarget(cfg)))
    text = repr(report)
    assert "RunReport(" in text and "array" not in text
    assert MASK_KEY not in text
