"""Scripted participants: they take a test through its HTTP API as the page does, for a dry run
before inviting people, the tests and the load benchmark.

A policy says what a participant picks: `original` (always right: it reads the truth from the
test's store, so it only works beside the store), `left` (always the left photo: a participant who
does not look, who is fooled about half the time) or `random`.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from experiments.humantest.store import AnswerStore

POLICIES = ("original", "left", "random")


@dataclass
class Session:
    """What one scripted participant did: its id, answers given and each answer's round trip."""

    participant: str = ""
    answered: int = 0
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def call(base: str, token: str, method: str, path: str, body=None, **query) -> tuple[int, dict]:
    """One request to the test's server; returns (status, JSON answer)."""
    from urllib.parse import urlencode

    url = f"{base}/{path}?{urlencode({'t': token, **query})}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def take_test(
    base: str,
    token: str,
    store_path: Path,
    policy: str = "original",
    *,
    seed: int = 0,
    stop_after: int | None = None,
    participant: str = "",
    colour_vision: str = "normal",
) -> Session:
    """Answer a whole session (or `stop_after` answers) by `policy`; `participant` continues a
    session begun before."""
    rng = random.Random(seed)
    session = Session(participant)
    if not session.participant:
        status, started = call(base, token, "POST", "api/start", {"colour_vision": colour_vision})
        if status != 200:
            session.errors.append(f"start: {status} {started}")
            return session
        session.participant = started["participant"]
    truth = {}
    if policy == "original":
        truth = {
            s.position: s.original_side
            for s in AnswerStore(store_path).plan_of(session.participant)
        }
    while stop_after is None or session.answered < stop_after:
        status, step = call(base, token, "GET", "api/next", participant=session.participant)
        if status != 200:
            session.errors.append(f"next: {status} {step}")
            return session
        if step["done"]:
            return session
        if policy == "original":
            side = truth[step["position"]]
        elif policy == "left":
            side = "left"
        else:
            side = rng.choice(("left", "right"))
        body = {"participant": session.participant, "position": step["position"],
                "answer": side, "ms": 700}  # fmt: skip
        begun = time.perf_counter()
        status, result = call(base, token, "POST", "api/answer", body)
        session.seconds.append(time.perf_counter() - begun)
        if status != 200:
            session.errors.append(f"answer: {status} {result}")
            return session
        session.answered += 1
    return session


def main(argv: list[str] | None = None) -> int:
    """`python -m experiments.humantest.scripted LINK [--policy P] [--participants N]
    [--store PATH]`: a dry run of a test that is being served."""
    import argparse
    from urllib.parse import parse_qs, urlsplit

    parser = argparse.ArgumentParser(
        prog="python -m experiments.humantest.scripted",
        description="Scripted participants take a served real-or-colorized test (a dry run).",
    )
    parser.add_argument("link", help="the link the test printed (http://HOST:PORT/?t=TOKEN)")
    parser.add_argument("--policy", choices=POLICIES, default="random")
    parser.add_argument("--participants", type=int, default=1)
    parser.add_argument("--store", type=Path, help="the test's answers.db (policy original)")
    args = parser.parse_args(argv)
    parts = urlsplit(args.link)
    token = parse_qs(parts.query).get("t", [""])[0]
    if args.policy == "original" and (args.store is None or not args.store.is_file()):
        parser.error("--policy original reads the truth from the test's store: give --store")
    base = f"{parts.scheme}://{parts.netloc}"
    for seed in range(args.participants):
        session = take_test(base, token, args.store, args.policy, seed=seed)
        if session.errors:
            print(f"error: {session.errors[0]}")
            return 1
        print(f"participant {seed + 1}: {session.answered} answers ({args.policy})")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
