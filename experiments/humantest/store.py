"""Where a real-or-colorized test keeps everything: the prepared pairs, each participant's plan
and every answer, in one SQLite file (`<runs_dir>/humantest/<name>/answers.db`).

Every answer is committed the moment it is given, so a server killed mid-session loses nothing and
a restart goes on where each participant was. The store refuses, and does not record, an answer
given twice, an answer for a pair the participant was not shown (or that is not in their plan),
and any answer once their session has ended.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from experiments.humantest.protocol import CATCH, PRACTICE, TEST, PlannedPair, plan_session

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (id TEXT PRIMARY KEY, file TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, photo TEXT NOT NULL,
    original_image TEXT NOT NULL, other_image TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS participants (
    id TEXT PRIMARY KEY, started REAL NOT NULL, colour_vision TEXT NOT NULL,
    expertise TEXT NOT NULL, finished REAL
);
CREATE TABLE IF NOT EXISTS plan (
    participant TEXT NOT NULL, position INTEGER NOT NULL, pair TEXT NOT NULL,
    kind TEXT NOT NULL, original_side TEXT NOT NULL, shown_at REAL,
    PRIMARY KEY (participant, position)
);
CREATE TABLE IF NOT EXISTS answers (
    participant TEXT NOT NULL, position INTEGER NOT NULL, pair TEXT NOT NULL,
    kind TEXT NOT NULL, original_side TEXT NOT NULL, answer TEXT NOT NULL,
    picked_original INTEGER NOT NULL, client_ms INTEGER NOT NULL, server_ms INTEGER NOT NULL,
    answered_at REAL NOT NULL,
    PRIMARY KEY (participant, position)
);
"""


class Refused(Exception):
    """A request the test does not take; `status` is its HTTP status, the message says why."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Step:
    """What a participant is shown next: a pair as two image ids, left and right."""

    position: int
    total: int
    practice: bool
    left: str
    right: str


class AnswerStore:
    """The test's SQLite file. Each call opens its own connection, so threads and processes
    (a restarted server, a script reading results) share it safely; writes take the database's
    lock first (`BEGIN IMMEDIATE`), so concurrent answers are serialized, never lost. Threads of
    one process queue on a lock of their own before that: SQLite's busy wait backs off in
    sleeps, which under many writers at once left some answers waiting seconds."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._writing = threading.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")  # an answer acknowledged survives a power cut
            if not write:
                yield db
                return
            with self._writing:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
        finally:
            db.close()

    # --- what was prepared ------------------------------------------------------------------
    def meta(self, key: str, default=None):
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, **values) -> None:
        with self._connect(write=True) as db:
            db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [(key, json.dumps(value)) for key, value in values.items()],
            )

    def token(self) -> str:
        """The secret every request carries; made once, so a restarted server keeps its link."""
        token = self.meta("token")
        if token is None:
            token = secrets.token_urlsafe(24)
            self.set_meta(token=token)
        return token

    def is_prepared(self) -> bool:
        return self.meta("prepared", False)

    def add_pairs(self, images: dict[str, str], pairs: list[dict]) -> None:
        """Record the prepared images ({id: file name}) and pairs, marking the test prepared."""
        with self._connect(write=True) as db:
            db.executemany("INSERT INTO images VALUES (?, ?)", list(images.items()))
            db.executemany(
                "INSERT INTO pairs VALUES (:id, :kind, :model, :photo, :original_image, "
                ":other_image)",
                pairs,
            )
            db.execute("INSERT OR REPLACE INTO meta VALUES ('prepared', 'true')")

    def image_files(self) -> dict[str, str]:
        with self._connect() as db:
            return dict(db.execute("SELECT id, file FROM images"))

    def pairs(self) -> pd.DataFrame:
        with self._connect() as db:
            return pd.read_sql_query("SELECT * FROM pairs ORDER BY kind, model, photo", db)

    # --- participants -----------------------------------------------------------------------
    def start(self, colour_vision: str, expertise: str, limit: int) -> tuple[str, int]:
        """A new participant with a plan of their own; returns their id and number of steps."""
        participant = secrets.token_hex(16)
        rng = random.Random(secrets.randbits(64))
        with self._connect(write=True) as db:
            (count,) = db.execute("SELECT COUNT(*) FROM participants").fetchone()
            if count >= limit:
                raise Refused(429, f"this test takes at most {limit} participants")
            rows = db.execute("SELECT id, kind, model, photo FROM pairs ORDER BY id").fetchall()
            test = [(pid, model, photo) for pid, kind, model, photo in rows if kind == TEST]
            practice = [pid for pid, kind, _, _ in rows if kind == PRACTICE]
            catch = [pid for pid, kind, _, _ in rows if kind == CATCH]
            steps = plan_session(test, practice, catch, rng)
            db.execute(
                "INSERT INTO participants VALUES (?, ?, ?, ?, NULL)",
                (participant, time.time(), colour_vision, expertise),
            )
            db.executemany(
                "INSERT INTO plan VALUES (?, ?, ?, ?, ?, NULL)",
                [(participant, s.position, s.pair_id, s.kind, s.original_side) for s in steps],
            )
        return participant, len(steps)

    def _participant(self, db: sqlite3.Connection, participant: str) -> tuple:
        row = db.execute(
            "SELECT id, finished FROM participants WHERE id = ?", (participant,)
        ).fetchone()
        if row is None:
            raise Refused(404, "unknown participant")
        return row

    def next_step(self, participant: str) -> Step | None:
        """The participant's first unanswered pair, marked shown (None: the session ended)."""
        with self._connect(write=True) as db:
            _, finished = self._participant(db, participant)
            if finished is not None:
                return None
            row = db.execute(
                "SELECT p.position, p.pair, p.kind, p.original_side, p.shown_at, "
                "pr.original_image, pr.other_image FROM plan p JOIN pairs pr ON pr.id = p.pair "
                "WHERE p.participant = ? AND NOT EXISTS (SELECT 1 FROM answers a WHERE "
                "a.participant = p.participant AND a.position = p.position) "
                "ORDER BY p.position LIMIT 1",
                (participant,),
            ).fetchone()
            if row is None:
                return None
            position, _, kind, side, shown_at, original, other = row
            if shown_at is None:
                db.execute(
                    "UPDATE plan SET shown_at = ? WHERE participant = ? AND position = ?",
                    (time.time(), participant, position),
                )
            (total,) = db.execute(
                "SELECT COUNT(*) FROM plan WHERE participant = ?", (participant,)
            ).fetchone()
        left, right = (original, other) if side == "left" else (other, original)
        return Step(position, total, kind == PRACTICE, left, right)

    def answer(self, participant: str, position: int, answer: str, client_ms: int) -> dict:
        """Store one answer at once; returns whether it picked the original (for feedback on
        practice pairs only) and whether the session has ended.

        Raises:
            Refused: unknown participant, session ended, a pair not shown to them or not in
                their plan, or an answer already given.
        """
        now = time.time()
        with self._connect(write=True) as db:
            _, finished = self._participant(db, participant)
            if finished is not None:
                raise Refused(409, "the session has ended")
            step = db.execute(
                "SELECT pair, kind, original_side, shown_at FROM plan "
                "WHERE participant = ? AND position = ?",
                (participant, position),
            ).fetchone()
            if step is None:
                raise Refused(409, "no such pair in this session")
            pair, kind, side, shown_at = step
            if shown_at is None:
                raise Refused(409, "this pair was not shown")
            done = db.execute(
                "SELECT 1 FROM answers WHERE participant = ? AND position = ?",
                (participant, position),
            ).fetchone()
            if done is not None:
                raise Refused(409, "this pair was answered already")
            picked = answer == side
            db.execute(
                "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (participant, position, pair, kind, side, answer, int(picked), client_ms,
                 round((now - shown_at) * 1000), now),
            )  # fmt: skip
            left = db.execute(
                "SELECT COUNT(*) FROM plan p WHERE p.participant = ? AND NOT EXISTS (SELECT 1 "
                "FROM answers a WHERE a.participant = p.participant AND a.position = p.position)",
                (participant,),
            ).fetchone()[0]
            if left == 0:
                db.execute("UPDATE participants SET finished = ? WHERE id = ?", (now, participant))
        return {
            "practice": kind == PRACTICE,
            "correct": picked if kind == PRACTICE else None,
            "original_side": side if kind == PRACTICE else None,
            "done": left == 0,
        }

    def plan_of(self, participant: str) -> list[PlannedPair]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT position, pair, kind, original_side FROM plan WHERE participant = ? "
                "ORDER BY position",
                (participant,),
            ).fetchall()
        return [PlannedPair(*row) for row in rows]

    # --- what was answered ------------------------------------------------------------------
    def answers(self) -> pd.DataFrame:
        """Every answer with its pair's model and photo and its participant's answers to the
        questions (one row an answer)."""
        with self._connect() as db:
            return pd.read_sql_query(
                "SELECT a.participant, a.position, a.kind, pr.model, pr.photo, a.original_side, "
                "a.answer, a.picked_original, a.client_ms, a.server_ms, a.answered_at, "
                "pa.colour_vision, pa.expertise, pa.finished IS NOT NULL AS finished "
                "FROM answers a JOIN pairs pr ON pr.id = a.pair "
                "JOIN participants pa ON pa.id = a.participant ORDER BY a.answered_at",
                db,
            )

    def participants(self) -> pd.DataFrame:
        with self._connect() as db:
            return pd.read_sql_query("SELECT * FROM participants ORDER BY started", db)
