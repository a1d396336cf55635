"""Who must be trusted (issue 15, item 7): the threshold-Paillier dealer sees the whole key.

Review story: ``setup_threshold_paillier`` handed back a config and a plain dict of shares,
and nothing stopped a deployment from running the dealer on the aggregator, which then held
every share: no threshold at all. The setup now returns the public config and the secret
:class:`MemberKeyShares` as two named parts; the shares refuse pickling and printing; the
shared config can hold no share; and the aggregator refuses to start in a process that still
holds a share of its key, unless it is told it runs a simulation.
"""

from __future__ import annotations

import dataclasses
import gc
import pickle

import pytest

from secagg.errors import ConfigurationError
from secagg.he.threshold_paillier import KeyShare, deal_threshold_keys, shares_held
from secagg.protocols.registry import SimulationParams, get_protocol
from secagg.protocols.threshold_he import ThresholdHEServer, setup_threshold_paillier
from secagg.protocols.threshold_he.keys import MemberKeyShares, ThresholdPaillierSetup
from secagg.protocols.threshold_he.spec import ThresholdHESimulation


def _setup() -> ThresholdPaillierSetup:
    return setup_threshold_paillier(
        [1, 2, 3, 4], bits=8, vector_length=3, committee=[1, 2, 3], threshold=2, key_bits=512
    )


def _walk(value: object, seen: set[int]) -> list[object]:
    """Every object reachable from a config's fields (dataclasses, tuples, attributes)."""
    if id(value) in seen:
        return []
    seen.add(id(value))
    found = [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            found += _walk(getattr(value, item.name), seen)
    elif isinstance(value, (tuple, list)):
        for item in value:
            found += _walk(item, seen)
    else:
        for name in getattr(type(value), "__slots__", ()):
            if name != "__weakref__" and hasattr(value, name):
                found += _walk(getattr(value, name), seen)
    return found


def test_the_setup_returns_the_public_and_the_secret_part_apart() -> None:
    setup = _setup()
    assert isinstance(setup, ThresholdPaillierSetup)
    config, shares = setup  # still unpacks as a pair
    assert config is setup.config and shares is setup.member_shares
    assert isinstance(shares, MemberKeyShares) and sorted(shares) == [1, 2, 3]
    assert all(isinstance(shares[m], KeyShare) for m in shares)
    # The shared config holds no share and no secret.
    reachable = _walk(config, set())
    assert not [item for item in reachable if isinstance(item, (KeyShare, MemberKeyShares))]
    # The shares never travel by accident.
    for secret in (shares, ThresholdHESimulation(config, shares)):
        with pytest.raises(TypeError):
            pickle.dumps(secret)
    assert repr(shares).startswith("MemberKeyShares(members=[1, 2, 3], key=")
    with pytest.raises(TypeError):
        shares[1] = shares[2]  # type: ignore[index]


def test_the_config_refuses_a_key_share_for_the_public_key() -> None:
    config, shares = _setup()
    with pytest.raises(ConfigurationError, match="never holds a key share"):
        dataclasses.replace(config, public_key=shares[1])  # type: ignore[arg-type]


def test_the_aggregator_refuses_to_run_next_to_key_shares() -> None:
    config, shares = _setup()
    assert shares_held(config.public_key) == 3  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="holds key shares"):
        ThresholdHEServer(config)
    with pytest.raises(ConfigurationError, match="public config"):
        ThresholdHEServer(ThresholdHESimulation(config, shares))  # type: ignore[arg-type]
    # A simulation says so explicitly.
    assert ThresholdHEServer(config, simulation=True).state.value == "idle"
    # Once the shares are handed over and dropped, the aggregator may start.
    del shares
    gc.collect()
    assert shares_held(config.public_key) == 0  # type: ignore[arg-type]
    assert ThresholdHEServer(config).state.value == "idle"


def test_shares_of_another_key_do_not_count() -> None:
    config, _ = _setup()
    gc.collect()
    _, others = deal_threshold_keys(512, threshold=1, holders=1)
    assert others and shares_held(config.public_key) == 0  # type: ignore[arg-type]
    assert ThresholdHEServer(config).state.value == "idle"


def test_the_simulator_acknowledges_that_it_plays_every_party() -> None:
    spec = get_protocol("threshold-paillier")
    simulation = spec.make_config(SimulationParams(clients=3, dim=2, bits=8), key_bits=512)
    server = spec.make_server(simulation)
    assert server.state.value == "idle"
