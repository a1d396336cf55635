# Every target builds its own virtual environment from the package registry.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=

.PHONY: all venv test demo lint bench bench-quick fuzz fuzz-corpus clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch is pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[all,test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check secagg tests benchmarks examples
	$(BIN)/mypy secagg benchmarks

test: lint
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python examples/fedavg_digits.py

# secagg bench writes into ./secagg-bench/ by default; here into the repository's report.
bench: $(STAMP)
	$(BIN)/python -m secagg bench --json benchmarks/results/bench.json \
		--markdown BENCHMARKS.md --plots docs/img

bench-quick: $(STAMP)
	$(BIN)/python -m secagg bench --quick --out benchmarks/results/quick

# Coverage-guided fuzzing (atheris, the 'fuzz' extra) of every decoder and loader, FUZZ_SECONDS
# per target (FUZZ_TARGETS: a subset by name); `make test` runs a short pass of the same targets
# (tests/fuzz/test_fuzz.py). Without atheris the runner falls back to random mutations.
fuzz: $(STAMP)
	$(BIN)/pip install --quiet -e '.[fuzz]'
	$(BIN)/python -m tests.fuzz.run --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Regenerate the committed corpus from real sessions (only when a format changes).
fuzz-corpus: $(STAMP)
	$(BIN)/python -m tests.fuzz.make_corpus

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis build dist *.egg-info \
		secagg-bench
