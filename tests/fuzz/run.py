"""Fuzz every decoder and loader for a bounded time: ``make fuzz`` runs this.

``python -m tests.fuzz.run [--seconds 60] [--engine auto|atheris|mutate] [TARGET ...]``

Each target (:data:`tests.fuzz.targets.TARGETS`; all of them when none is named) runs in its
own process for ``--seconds``, starting from a scratch copy of its committed corpus
(``tests/fuzz/corpus/<target>/``; the copy grows, the repository does not):

* ``atheris`` (the ``fuzz`` extra; the default when it imports): coverage-guided libFuzzer
  over the instrumented ``secagg`` package, with libFuzzer's own mutations plus
  :func:`tests.fuzz.mutate.mutate` (msgpack-aware) as its custom mutator, a 10 s per-input
  timeout (a hang is a crash) and a crash artifact written to the scratch folder;
* ``mutate``: without atheris, random mutations of the corpus (:func:`mutate`), every new
  input kept when it raises an error text not seen before (a cheap stand-in for coverage).

A crash is what :func:`tests.fuzz.targets.check` says it is. The run prints one line per
target and exits 1 if any target crashed, naming the input that did.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz.mutate import mutate
from tests.fuzz.targets import CORPUS, TARGETS, Crash, check

HANG_SECONDS = 10


def _corpus(name: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted((CORPUS / name).iterdir())]


def _atheris_child(name: str, seconds: int, workdir: Path) -> int:
    import atheris

    seeds = _corpus(name)
    # Instrument exactly what the target runs: its decoders are imported lazily, so one
    # pass over the corpus inside the context loads (and instruments) them all.
    with atheris.instrument_imports(include=["secagg"]):
        from tests.fuzz import mutate as mutations
        from tests.fuzz import targets

        target = targets.TARGETS[name]
        for data in seeds:
            check(target, data)

    def one_input(data: bytes) -> None:
        check(target, data)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.5:
            return atheris.Mutate(data, max_size)
        try:
            mutated = mutations.mutate(data, rng, seeds)
        except Exception:  # a bug of the mutator is not a crash of the target
            return atheris.Mutate(data, max_size)
        return mutated[:max_size]

    corpus = workdir / "corpus"
    argv = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={seconds}",
        f"-timeout={HANG_SECONDS}",
        "-rss_limit_mb=4096",
        "-max_len=262144",
        f"-artifact_prefix={workdir}/",
        "-print_final_stats=1",
    ]
    atheris.Setup(argv, one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
    return 0  # pragma: no cover - atheris.Fuzz exits the process


def _mutate_child(name: str, seconds: int, workdir: Path) -> int:
    target = TARGETS[name]
    pool = _corpus(name)
    seen: set[str] = set()
    rng = random.Random(int.from_bytes(os.urandom(8), "big"))  # not-secret: fuzzing seed
    deadline = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < deadline:
        data = mutate(rng.choice(pool), rng, pool)
        runs += 1
        started = time.monotonic()
        try:
            outcome = check(target, data)
        except Crash as crash:
            artifact = workdir / f"crash-{runs}"
            artifact.write_bytes(data)
            print(f"CRASH {name}: {crash} (input: {artifact})", flush=True)
            return 1
        if time.monotonic() - started > HANG_SECONDS:
            artifact = workdir / f"slow-{runs}"
            artifact.write_bytes(data)
            print(f"HANG {name}: input took over {HANG_SECONDS} s ({artifact})", flush=True)
            return 1
        if outcome not in seen and len(pool) < 4096:  # a new outcome: keep the input
            seen.add(outcome)
            pool.append(data)
    print(f"#{runs} DONE {name}: {runs} inputs, pool {len(pool)}", flush=True)
    return 0


def _engine(requested: str) -> str:
    if requested != "auto":
        return requested
    try:
        import atheris  # noqa: F401
    except ImportError:
        return "mutate"
    return "atheris"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="targets (default: all)")
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", 60)))
    parser.add_argument("--engine", choices=("auto", "atheris", "mutate"), default="auto")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds < 1:
        parser.error("--seconds must be at least 1")
    engine = _engine(args.engine)
    if args.child:
        workdir = Path(args.workdir)
        run = _atheris_child if engine == "atheris" else _mutate_child
        return run(args.child, args.seconds, workdir)
    names = args.targets or list(TARGETS)
    unknown = sorted(set(names) - set(TARGETS))
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {', '.join(TARGETS)}")
    scratch = Path(tempfile.mkdtemp(prefix="secagg-fuzz-"))
    print(f"fuzzing {len(names)} targets for {args.seconds} s each with {engine} in {scratch}")
    failed = []
    for name in names:
        workdir = scratch / name
        shutil.copytree(CORPUS / name, workdir / "corpus")
        command = [
            sys.executable, "-m", "tests.fuzz.run", "--child", name, "--workdir", str(workdir),
            "--seconds", str(args.seconds), "--engine", engine,
        ]  # fmt: skip
        log = workdir / "log.txt"
        with log.open("w") as out:
            code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
        summary = _summary(log.read_text(errors="replace"))
        status = "ok" if code.returncode == 0 else f"CRASH (exit {code.returncode}, see {log})"
        print(f"{name:28} {status:8} {summary}", flush=True)
        if code.returncode != 0:
            failed.append(name)
    if failed:
        print(f"crashes in: {', '.join(failed)}")
        return 1
    shutil.rmtree(scratch)
    return 0


def _summary(log: str) -> str:
    lines = [line for line in log.splitlines() if line.startswith(("#", "stat::number_of"))]
    done = [line for line in lines if "DONE" in line or "number_of_executed_units" in line]
    return done[-1].strip() if done else (lines[-1].strip() if lines else "")


if __name__ == "__main__":
    sys.exit(main())
