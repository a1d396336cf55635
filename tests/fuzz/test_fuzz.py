"""The CI pass of the fuzzing (issue 15.4 and 15.8): every decoder, every hostile input.

Three passes per target of :data:`tests.fuzz.targets.TARGETS` (every decoder and loader of
secagg, the protocol families through the registry):

* the committed corpus replays (and decodes: it is made of real messages in the fixtures'
  context, so a format change that orphans it is caught here);
* every deterministic hostile variant of a sample of the corpus
  (:func:`tests.fuzz.mutate.hostile_variants`: each value replaced by a 100 KB field, deep
  nesting, huge ints, bools, NaN, wrong types...) must end in a typed, bounded,
  non-echoing error or a value;
* a hypothesis-driven random mutation budget (the ``thorough`` profile makes it long; the
  coverage-guided run is ``make fuzz``).

A target whose decoder lives in a file this branch does not own and still echoes is marked
with a strict xfail naming the fix (see :data:`KNOWN`), so it flips to a failure once fixed.
"""

from __future__ import annotations

import itertools
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.mutate import hostile_variants, mutate
from tests.fuzz.targets import CORPUS, TARGETS, check

HANG_SECONDS = 10.0
"""An input slower than this is a hang (a generous bound on a loaded 2-core machine)."""
HOSTILE_BUDGET = 600
"""Hostile variants per target in the CI pass (spread over the corpus files)."""

KNOWN: dict[str, str] = {}


def _corpus(name: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted((CORPUS / name).iterdir())]


def _params(names: list[str]) -> list[object]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN[name]))
        if name in KNOWN
        else name
        for name in names
    ]


def test_every_target_has_a_corpus_and_every_corpus_a_target() -> None:
    folders = {path.name for path in CORPUS.iterdir() if path.is_dir()}
    assert folders == set(TARGETS)
    for name in TARGETS:
        assert _corpus(name), name


@pytest.mark.parametrize("name", list(TARGETS))
def test_the_corpus_replays_and_decodes(name: str) -> None:
    target = TARGETS[name]
    outcomes = [check(target, data) for data in _corpus(name)]
    # Real messages in the fixtures' context: most decode (a few are refused on purpose,
    # e.g. a sealed box opened under the wrong key).
    assert outcomes.count("accepted") >= 1, (name, outcomes[:3])


def _timed_check(name: str, data: bytes) -> None:
    started = time.perf_counter()
    check(TARGETS[name], data)
    elapsed = time.perf_counter() - started
    assert elapsed < HANG_SECONDS, f"{name}: an input took {elapsed:.1f} s"


@pytest.mark.parametrize("name", _params(list(TARGETS)))
def test_hostile_variants_end_in_typed_bounded_errors(name: str) -> None:
    files = _corpus(name)
    # Round-robin over (up to 8 of) the corpus files, so that every one gets variants.
    rounds = itertools.zip_longest(*(hostile_variants(data) for data in files[:8]))
    variants = (data for batch in rounds for data in batch if data is not None)
    for data in itertools.islice(variants, HOSTILE_BUDGET):
        _timed_check(name, data)


# A KNOWN target's strict xfail lives on the deterministic pass above (a random pass may or
# may not hit its fault); it joins this pass once fixed and removed from KNOWN.
@pytest.mark.parametrize("name", [name for name in TARGETS if name not in KNOWN])
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_mutations_end_in_typed_bounded_errors(name: str, seed: int) -> None:
    files = _corpus(name)
    rng = random.Random(seed)  # not-secret: mutation choices
    data = rng.choice(files)
    for _ in range(8):
        data = mutate(data, rng, files)
        _timed_check(name, data)
