"""Option tables are declared by each protocol's spec: a new protocol brings its own flags
and ranges to the command line without a line of CLI code."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest

from secagg.cli import build_parser, main
from secagg.errors import ConfigurationError
from secagg.protocols.options import COMMON_OPTIONS, Option, OptionError, Rule, flag_of
from secagg.protocols.registry import (
    ProtocolSpec,
    get_protocol,
    protocol_names,
    protocols_taking,
    register_protocol,
)
from tests.helpers.simulator_toy import ToyConfig, toy_spec


def _noisy_spec() -> ProtocolSpec:
    """A toy protocol that takes a threshold of at most half the clients and a variant of
    its own, ``noise_bits`` (an even number in [2, 16]), and describes what it used."""
    base = toy_spec()

    def make_config(params: object, *, noise_bits: int = 4) -> ToyConfig:
        assert noise_bits % 2 == 0
        return base.make_config(params)  # type: ignore[no-any-return]

    options = dict(COMMON_OPTIONS)
    options["threshold"] = Option(
        "clients needed", int, 1, lambda c: int(c["clients"]) // 2, why="half of {clients}"
    )
    options["noise_bits"] = Option(
        "bits of noise", int, 2, 16, rules=(Rule(lambda v, c: v % 2 == 0, "an even number"),),
        default=4,
    )  # fmt: skip
    return dataclasses.replace(
        base,
        name="toy-noisy",
        make_config=make_config,
        variants=("noise_bits",),
        options=options,
        refusals={"degree": "it has no graph"},
        describe=lambda config: {"clients": config.clients, "threshold": config.threshold},
    )


register_protocol(_noisy_spec(), replace=True)
register_protocol(toy_spec(), replace=True)


def test_a_new_option_gets_its_flag_and_range(capsys: pytest.CaptureFixture[str]) -> None:
    assert "toy-noisy" in protocol_names()
    simulate = build_parser()._subparsers._group_actions[0].choices["simulate"]  # type: ignore[union-attr]
    assert "toy-noisy: bits of noise (default: 4)" in simulate.format_help()
    base = ["simulate", "--protocol", "toy-noisy", "--clients", "6", "--dim", "4"]
    out = io.StringIO()
    assert main([*base, "--noise-bits", "6", "--threshold", "3", "--json"], out) == 0
    parameters = json.loads(out.getvalue())["parameters"]
    assert parameters["noise_bits"] == 6 and parameters["threshold"] == 3
    assert main([*base, "--noise-bits", "7"]) == 2
    err = capsys.readouterr().err
    assert "--noise-bits 7 is out of range: toy-noisy takes 2 <= --noise-bits <= 16, an even" in err
    assert main([*base, "--threshold", "4"]) == 2
    assert "1 <= --threshold <= 3 (half of --clients)" in capsys.readouterr().err
    assert main([*base, "--degree", "2"]) == 2
    assert "--degree does not apply to toy-noisy: it has no graph" in capsys.readouterr().err
    assert main(["simulate", "--protocol", "bonawitz", "--noise-bits", "4"]) == 2
    assert "(--noise-bits applies to toy-noisy only)" in capsys.readouterr().err
    assert protocols_taking("noise_bits") == ("toy-noisy",)


def test_options_that_are_neither_parameters_nor_variants_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="neither generic parameters nor variants"):
        dataclasses.replace(_noisy_spec(), variants=())


def test_a_spec_without_a_table_takes_the_generic_parameters() -> None:
    spec = get_protocol("toy")
    assert spec.options is None
    assert {"clients", "dim", "bits", "threshold", "degree"} <= set(spec.option_table)
    spec.check_options({"clients": 3, "threshold": 2})
    with pytest.raises(OptionError, match="clients 1 is out of range"):
        spec.check_options({"clients": 1})
    config = spec.configure({"clients": 3, "dim": 4, "bits": 8})
    assert spec.describe_config(config) == {"clients": 3, "dim": 4, "bits": 8}


def test_check_options_spells_names_as_asked() -> None:
    spec = get_protocol("secagg+")
    with pytest.raises(OptionError, match=r"^corrupt_fraction 2 is out of range") as caught:
        spec.check_options({"clients": 20, "dropout_fraction": 0.0, "corrupt_fraction": 2})
    assert caught.value.option == "corrupt_fraction" and caught.value.flag == "corrupt_fraction"
    with pytest.raises(OptionError, match=r"^--corrupt 2 is out of range"):
        spec.check_options({"clients": 20, "corrupt_fraction": 2}, spell=flag_of)
    with pytest.raises(OptionError, match=r"^--bits True is not an integer"):
        spec.check_options({"clients": 20, "bits": True}, spell=flag_of)
    assert flag_of("dropout_fraction") == "--dropout" and flag_of("key_bits") == "--key-bits"


def test_every_builtin_spec_describes_its_threshold_and_degree() -> None:
    for name, values in (
        ("bonawitz", {"clients": 5}),
        ("secagg+", {"clients": 12}),
        ("threshold-paillier", {"clients": 5, "key_bits": 512}),
        ("threshold-ckks", {"clients": 6}),
    ):
        spec = get_protocol(name)
        config = spec.configure({"dim": 4, "bits": 8, **values})
        described = spec.describe_config(config)
        assert isinstance(described["threshold"], int) and isinstance(described["degree"], int)
        assert described["clients"] == values["clients"] and described["dim"] == 4
