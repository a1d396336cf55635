"""The simulator's debug logs: what they say (rounds, deadlines, exclusions with their
reason, timings) and what they never say (a key, a seed, a share, an input).

Whole sessions of every built-in protocol run with every ``secagg`` logger at DEBUG; the
parties' secrets are harvested while the session runs (:mod:`tests.helpers.secrets_in_logs`)
and searched for in the captured records.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from secagg.protocols.registry import get_protocol
from secagg.sim.inputs import seeded_inputs
from secagg.sim.simulator import DropoutSchedule, SimulationResult, simulate
from tests.helpers.secrets_in_logs import (
    SecretHarvest,
    captured_logs,
    leaks,
    secret_forms,
    watched_spec,
)

SESSIONS: list[tuple[str, dict[str, Any], float]] = [
    ("bonawitz", {"clients": 6, "dim": 16, "bits": 16}, 0.34),
    ("bonawitz", {"clients": 6, "dim": 16, "bits": 16, "active": True}, 0.0),
    ("secagg+", {"clients": 10, "dim": 16, "bits": 16, "degree": 4}, 0.2),
    ("threshold-paillier", {"clients": 5, "dim": 16, "bits": 16, "key_bits": 512}, 0.2),
    ("ckks", {"clients": 3, "dim": 16, "bits": 16}, 0.0),
    ("threshold-ckks", {"clients": 5, "dim": 16, "bits": 16, "degree": 3}, 0.2),
]


def _session(
    protocol: str, values: dict[str, Any], dropout: float
) -> tuple[SimulationResult, list[str], SecretHarvest]:
    spec = get_protocol(protocol)
    harvest = SecretHarvest()
    with captured_logs() as records:
        config = spec.configure({**values, "dropout_fraction": dropout})
        harvest.add(config)  # the dealer's key shares, signing keys, the CKKS secret
        ids = list(spec.client_ids(config))
        schedule = DropoutSchedule.from_rate(ids, dropout, spec.dropout_round, seed=1)
        inputs = seeded_inputs(1, spec.vector_length(config), spec.bits(config))
        for cid in ids:
            harvest.add({"input": inputs(cid)})
        result = simulate(
            config, inputs, dropouts=schedule, protocol=watched_spec(spec, harvest)
        )
    return result, records, harvest


@pytest.mark.parametrize(
    ("protocol", "values", "dropout"),
    SESSIONS,
    ids=["bonawitz", "bonawitz-active", "secagg+", "threshold-paillier", "ckks", "threshold-ckks"],
)
def test_a_whole_session_logs_no_secret(
    protocol: str, values: dict[str, Any], dropout: float
) -> None:
    result, records, harvest = _session(protocol, values, dropout)
    assert result.matches
    assert len(harvest) > 0, "the harvest found no secret: it would prove nothing"
    assert records, "the session logged nothing"
    found = leaks(records, harvest)
    assert not found, f"secrets in the logs: {found[:5]}"


def test_the_logs_say_rounds_deadlines_exclusions_and_timings() -> None:
    result, records, _ = _session("bonawitz", {"clients": 6, "dim": 16, "bits": 16}, 0.34)
    text = "\n".join(records)
    dropped = sorted(result.dropped)
    assert len(dropped) == 2
    assert "round advertise_keys begins" in text and "round unmasking begins" in text
    assert f"2 clients drop before sending: [{dropped[0]}, {dropped[1]}]" in text
    assert "deadline of round masked_input passes" in text
    for cid in dropped:
        assert f"excluded client {cid}: {result.aggregate.excluded[cid]}" in text
    assert "round masked_input: server" in text and " s, clients max " in text
    assert "done in" in text and "4 included, 2 excluded" in text
    assert all(record.startswith("secagg.sim.simulator") for record in records)


def test_long_id_lists_are_cut_and_an_abort_is_logged() -> None:
    from secagg.errors import ProtocolAbort
    from secagg.sim.simulator import MAX_LOGGED_IDS

    with pytest.raises(ProtocolAbort), captured_logs() as records:
        _session("bonawitz", {"clients": 30, "dim": 4, "bits": 8}, 0.9)
    line = next(r for r in records if "clients drop before sending" in r and "more" in r)
    assert f"... {27 - MAX_LOGGED_IDS} more]" in line
    assert "aborted: ProtocolAbort: only 3 masked inputs arrived" in records[-1]


def test_the_helper_finds_a_planted_secret_in_every_form() -> None:
    """The search can fail: a secret logged as hex, as a prefix, as bytes repr or base64,
    or a key share as a number, is found; unrelated text is not."""
    seed = bytes(range(7, 39))
    share = 2**200 + 12345
    harvest = SecretHarvest()
    harvest.add({"self_seed": seed, "key_share": share, "public_key": b"\x01" * 32})
    assert harvest.secrets == {seed} and harvest.numbers == {share}
    logger = logging.getLogger("secagg.sim.simulator")
    for form in (seed.hex(), seed[:8].hex().upper(), repr(seed), str(share), hex(share)):
        with captured_logs() as records:
            logger.debug("state %s", form)
        assert leaks(records, harvest), form
    with captured_logs() as records:
        logger.debug("round %s begins", "unmasking", extra={"leak": seed})
    assert leaks(records, harvest)
    with captured_logs() as records:
        logger.debug("nothing to see: %s", (b"\x01" * 32).hex())
    assert not leaks(records, harvest)
    assert seed.hex() in secret_forms(seed)


def test_the_harvest_reaches_private_keys_and_shares() -> None:
    from secagg.keys import KeyPair
    from secagg.shamir import share_secrets
    from secagg.signing import SigningKey

    pair, signing = KeyPair.generate(), SigningKey.generate()
    shares = share_secrets([bytes(range(32))], holders=[1, 2, 3], threshold=2)
    harvest = SecretHarvest()
    harvest.add({"pair": pair, "signing": signing, "shares": shares})
    assert pair.private_bytes() in harvest.secrets
    assert len(harvest.limbs) >= 1 and len(harvest.secrets) >= 3
    values = np.asarray(next(iter(harvest.limbs)))
    assert values.shape == (4,)
