"""The protocol of a real-or-colorized test, set in one place, and each participant's plan.

A participant sees pairs side by side, the original on a random side, and clicks (or taps) the
one they think is the original. First a few practice pairs with feedback (left out of the
results), then every test pair (each model's colorization of each test photo: a photo at most
once per model, the models interleaved) in an order of their own, with catch pairs (an original
against its gray version) mixed in: a participant who misses one is flagged as answering at
random, and their answers are reported apart. A pair may be shown for a limited time only, after
which the participant still answers (as in Zhang, Isola & Efros 2016, who showed each pair for
about a second and let people answer at leisure).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

LEFT, RIGHT = "left", "right"
SIDES = (LEFT, RIGHT)
PRACTICE, TEST, CATCH = "practice", "test", "catch"
KINDS = (PRACTICE, TEST, CATCH)


@dataclass(frozen=True)
class Protocol:
    """How a session runs. Each field is a `key=value` of `python -m experiments.humantest`.

    Attributes:
        practice: practice pairs with feedback first (not counted).
        catch: catch pairs (original against gray) mixed into the test pairs.
        time_limit: seconds a pair stays on screen (0: until the answer).
        size: the side, in pixels, both photos of a pair are cropped and sized to.
        max_participants: sessions the server starts at most (a bound on what it stores).
    """

    practice: int = 3
    catch: int = 2
    time_limit: float = 0.0
    size: int = 256
    max_participants: int = 500

    LIMITS = {  # key: (lowest, highest) allowed
        "practice": (0, 10),
        "catch": (0, 10),
        "time_limit": (0.0, 60.0),
        "size": (32, 1024),
        "max_participants": (1, 100_000),
    }

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PlannedPair:
    """One step of a participant's session: which prepared pair, and the original's side."""

    position: int
    pair_id: str
    kind: str
    original_side: str


def plan_session(
    test_pairs: list[tuple[str, str, str]],
    practice_pairs: list[str],
    catch_pairs: list[str],
    rng: random.Random,
) -> list[PlannedPair]:
    """A participant's steps: the practice pairs, then the test and catch pairs shuffled.

    Args:
        test_pairs: (pair id, model, photo) of every test pair; each (model, photo) once, so a
            participant sees each photo at most once per model.
        practice_pairs, catch_pairs: pair ids.
        rng: the participant's own random source (order and sides).
    """
    practice = list(practice_pairs)
    rng.shuffle(practice)
    rest = [(pair_id, TEST) for pair_id, _, _ in test_pairs]
    rest += [(pair_id, CATCH) for pair_id in catch_pairs]
    rng.shuffle(rest)
    steps = [(pair_id, PRACTICE) for pair_id in practice] + rest
    return [
        PlannedPair(position, pair_id, kind, rng.choice(SIDES))
        for position, (pair_id, kind) in enumerate(steps)
    ]
