"""Many participants at once: the real-or-colorized test's server on loopback, N scripted
participants answering together, and the time each answer takes to be stored.

    python bench/bench_humantest_load.py [--participants 50] [--runs-dir DIR]

Runs a smoke `losses` study into a scratch folder (or uses `--runs-dir`, which must hold one),
starts `python -m experiments.humantest study=losses port=0`, lets N participants (random
answers) take the whole test at the same moment, and prints: answers stored against answers
given, errors, and the round trip of an answer (POST until the server has committed it) as
median, 95th percentile and worst; then the same store alone (no HTTP) under N threads.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.humantest.scripted import take_test  # noqa: E402
from experiments.humantest.store import AnswerStore  # noqa: E402
from tests.studies_helpers import run_cli  # noqa: E402

LINK = re.compile(r"(http://[\d.]+:\d+)/\?t=([A-Za-z0-9_-]+)")


def figures(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {1000 * statistics.median(ordered):.1f} ms, 95th percentile {1000 * p95:.1f} ms, "
        f"worst {1000 * ordered[-1]:.1f} ms over {len(ordered)} answers"
    )


def over_http(runs_dir: Path, participants: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "experiments.humantest", "study=losses", "name=load",
         f"runs_dir={runs_dir}", "port=0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = token = None
    for line in process.stdout:
        if match := LINK.search(line):
            base, token = match.groups()
        if line.startswith("answers are stored"):
            break
    store = runs_dir / "humantest" / "load" / "answers.db"
    sessions = [None] * participants

    def one(index: int) -> None:
        sessions[index] = take_test(base, token, store, "random", seed=index)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(participants)]
    begun = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - begun
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=300)
    given = sum(s.answered for s in sessions)
    stored = len(AnswerStore(store).answers())
    errors = [e for s in sessions for e in s.errors]
    print(f"over HTTP, {participants} participants at once: {given} answers given, {stored} "
          f"stored, {len(errors)} errors, {wall:.1f} s in all")  # fmt: skip
    print(f"  answer round trip: {figures([t for s in sessions for t in s.seconds])}")


def store_alone(folder: Path, participants: int) -> None:
    from experiments.humantest.protocol import CATCH, PRACTICE, TEST

    store = AnswerStore(folder / "alone.db")
    pairs = [
        {"id": f"{kind}{i}", "kind": kind, "model": "m", "photo": f"p{i}",
         "original_image": f"{kind}{i}o", "other_image": f"{kind}{i}c"}
        for kind, count in ((PRACTICE, 3), (TEST, 6), (CATCH, 2)) for i in range(count)
    ]  # fmt: skip
    store.add_pairs(
        {p[k]: "x.png" for p in pairs for k in ("original_image", "other_image")}, pairs
    )
    people = [store.start("normal", "", limit=10_000)[0] for _ in range(participants)]
    seconds: list[float] = []
    lock = threading.Lock()

    def answer_all(participant: str) -> None:
        while (step := store.next_step(participant)) is not None:
            begun = time.perf_counter()
            store.answer(participant, step.position, "left", 500)
            with lock:
                seconds.append(time.perf_counter() - begun)

    threads = [threading.Thread(target=answer_all, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"the store alone, {participants} threads: {len(store.answers())} stored")
    print(f"  answer committed: {figures(seconds)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--runs-dir", type=Path, help="a runs folder holding a `losses` study")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        runs_dir = args.runs_dir
        if runs_dir is None:
            runs_dir = Path(scratch) / "runs"
            run_cli(
                "study=losses", "profile=smoke", f"runs_dir={runs_dir}", fresh=True
            ).check_returncode()
        over_http(runs_dir, args.participants)
        store_alone(Path(scratch), args.participants)


if __name__ == "__main__":
    main()
