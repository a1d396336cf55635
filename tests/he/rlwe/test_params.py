"""Parameter sets outside the HE security standard's 128-bit table are refused."""

from __future__ import annotations

import math

import pytest

from secagg.errors import ConfigurationError
from secagg.he.rlwe.params import HE_STANDARD_MAX_LOG_Q, RlweParameters
from secagg.he.rlwe.primes import ntt_primes


def test_table_is_the_standard() -> None:
    # Albrecht et al. 2018, Table 1, 128-bit classical, ternary secret.
    assert HE_STANDARD_MAX_LOG_Q == {
        1024: 27,
        2048: 54,
        4096: 109,
        8192: 218,
        16384: 438,
        32768: 881,
    }


@pytest.mark.parametrize(("degree", "limbs"), [(4096, 3), (8192, 6), (16384, 13), (32768, 27)])
def test_largest_standard_sets_are_accepted_and_one_more_limb_is_not(
    degree: int, limbs: int
) -> None:
    params = RlweParameters.standard(degree, limbs)
    assert params.modulus.bit_length() <= HE_STANDARD_MAX_LOG_Q[degree]
    assert RlweParameters.max_limbs(degree) == limbs
    assert params.limbs == limbs and math.isclose(params.log_modulus, math.log2(params.modulus))
    with pytest.raises(ConfigurationError, match="HE standard"):
        RlweParameters.standard(degree, limbs + 1)


def test_other_refusals() -> None:
    with pytest.raises(ConfigurationError):
        RlweParameters(8000, ntt_primes(2))  # not in the table
    with pytest.raises(ConfigurationError):
        RlweParameters(1024, ntt_primes(1))  # 32 bits > 27
    with pytest.raises(ConfigurationError):
        RlweParameters(8192, ())
    with pytest.raises(ConfigurationError):
        RlweParameters(8192, (97,))  # not an NTT prime of the table's kind
    with pytest.raises(ConfigurationError):
        RlweParameters(True, ntt_primes(2))
    with pytest.raises(ConfigurationError):
        RlweParameters.max_limbs(1000)


def test_ring_is_shared() -> None:
    params = RlweParameters.standard(8192, 3)
    assert params.ring is params.ring
    assert params.ring.moduli == params.moduli
    assert params.to_dict() == {"n": 8192, "q": list(params.moduli)}
