"""`python -m experiments.humantest` end to end, on a smoke `losses` study: the real command, its
real server on loopback, scripted participants answering over HTTP, the results in MLflow and in
the report, kill -9 of the server mid-session, 50 participants at once, the token and path tricks,
and the user's mistakes in one line."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments.humantest.scripted import call, take_test
from experiments.humantest.store import AnswerStore
from tests.studies_helpers import copy_stores, run_report

LINK = re.compile(r"(http://[\d.]+:(\d+))/\?t=([A-Za-z0-9_-]+)")


@pytest.fixture(scope="module")
def losses_study(smoke_losses_study, tmp_path_factory) -> Path:
    """A copy of the session's smoke `losses` study with its test prepared once (`--results`
    prepares, serves nothing); each test works on a copy of that."""
    runs_dir = copy_stores(smoke_losses_study[0], tmp_path_factory.mktemp("humantest-losses"))
    prepared = subprocess.run(
        [*command(runs_dir)[:-1], "--results"], capture_output=True, text=True, timeout=600
    )
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    assert "0 participants (0 finished, 0 flagged" in prepared.stdout
    return runs_dir


@pytest.fixture
def runs_dir(losses_study, tmp_path) -> Path:
    return copy_stores(losses_study, tmp_path / "runs")


def command(runs_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "experiments.humantest", "study=losses",
            f"runs_dir={runs_dir}", "port=0", *args]  # fmt: skip


class Served:
    """A running test server: its base URL, token, process and what it printed."""

    def __init__(self, process: subprocess.Popen, lines: list[str]):
        self.process, self.lines = process, lines
        match = next(LINK.search(line) for line in lines if LINK.search(line))
        self.base, self.port, self.token = match.group(1), int(match.group(2)), match.group(3)

    def stop(self, sig=signal.SIGINT, timeout: float = 120) -> str:
        """Stop it as Ctrl-C does; returns everything it printed."""
        self.process.send_signal(sig)
        out, _ = self.process.communicate(timeout=timeout)
        return "\n".join(self.lines) + out


@contextlib.contextmanager
def serving(runs_dir: Path, *args: str, timeout: float = 300):
    process = subprocess.Popen(
        command(runs_dir, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # waits for the link line, the server's own word
        line = process.stdout.readline()
        if not line:
            raise AssertionError("the server ended before printing its link:\n" + "".join(lines))
        lines.append(line.rstrip("\n"))
        if line.startswith("answers are stored"):
            break
    served = Served(process, lines)
    try:
        yield served
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def store_of(runs_dir: Path, name: str = "losses") -> Path:
    return runs_dir / "humantest" / name / "answers.db"


def metrics(runs_dir: Path, run_id: str) -> dict:
    return MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}").get_run(run_id).data.metrics


def model_run(runs_dir: Path, alias: str) -> str:
    client = MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}")
    return client.get_model_version_by_alias("losses", alias).run_id


def study_run(runs_dir: Path) -> str:
    client = MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("losses")
    (run,) = client.search_runs([experiment.experiment_id], "tags.`colorize.role` = 'study'")
    return run.info.run_id


def test_participants_who_always_pick_the_original_fool_nobody_in_mlflow_and_the_report(
    runs_dir, tmp_path
):
    with serving(runs_dir) as served:
        assert served.base.startswith("http://127.0.0.1:")
        assert "6 test pairs (3 photos x 2 models" in "\n".join(served.lines)
        for seed in range(3):
            session = take_test(served.base, served.token, store_of(runs_dir), "original",
                                seed=seed)  # fmt: skip
            assert not session.errors and session.answered == 3 + 6 + 2
        out = served.stop()
    assert served.process.returncode == 0, out
    assert "results written to the models' runs and the study's run" in out
    for alias in ("loss-mse", "loss-classification"):
        values = metrics(runs_dir, model_run(runs_dir, alias))
        assert values["human.fool_rate"] == 0.0
        assert values["human.answers"] == 9 and values["human.participants"] == 3
        assert values["human.fool_rate_low"] == 0.0
        assert values["human.fool_rate_high"] == pytest.approx(1 - 0.025 ** (1 / 9))
        study = metrics(runs_dir, study_run(runs_dir))
        assert study[f"human.{alias}.fool_rate"] == 0.0
    report = run_report(
        "study=losses", f"runs_dir={runs_dir}", f"reports_dir={tmp_path / 'reports'}"
    )
    assert report.returncode == 0, report.stderr[-2000:]
    # 0 of 9 fooled: the exact interval, 0 to 1 - 0.025^(1/9), lies below 50 %: reproduced
    high = f"{100 * (1 - 0.025 ** (1 / 9)):.1f}"
    assert (
        "Can people tell? people tell loss-mse's colorizations from the originals (the paper: 17 "
        f"of 18 told apart, 6 % fooled): reproduced (0.0 % fooled (0 of 9; 95 % CI 0.0 to {high} %)"
    ) in report.stdout, report.stdout
    rates = (tmp_path / "reports" / "losses-human.csv").read_text()
    assert "loss-classification" in rates and "reproduced" in rates
    text = pdf_text(tmp_path / "reports" / "losses.pdf")
    assert "Can people tell?" in text and "17 of 18" in text


def pdf_text(path: Path) -> str:
    import shutil

    if shutil.which("pdftotext") is None:
        if os.environ.get("CI"):
            pytest.fail("pdftotext (poppler-utils) is missing")
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout


def test_participants_who_always_pick_the_left_photo_are_fooled_about_half_the_time(runs_dir):
    path = store_of(runs_dir, "left")
    with serving(runs_dir, "name=left", "catch=0", "practice=1") as served:
        for seed in range(10):
            session = take_test(served.base, served.token, path, "left", seed=seed)
            assert not session.errors and session.answered == 1 + 6
        out = served.stop()
    answers = AnswerStore(path).answers()
    tests = answers[answers["kind"] == "test"]
    for alias in ("loss-mse", "loss-classification"):
        mine = tests[tests["model"] == alias]
        # fooled exactly when the original was on the right, which a coin decided
        expected = (mine["original_side"] == "right").mean()
        rate = metrics(runs_dir, model_run(runs_dir, alias))["human.fool_rate"]
        assert rate == pytest.approx(expected) and 0.2 <= rate <= 0.8, out
    assert "participants (10 finished, 0 flagged" in out


def test_a_server_killed_mid_session_loses_no_answer_and_the_session_goes_on(runs_dir):
    path = store_of(runs_dir)
    with serving(runs_dir) as served:
        first = take_test(served.base, served.token, path, "original", stop_after=4)
        assert first.answered == 4 and not first.errors
        os.killpg(served.process.pid, signal.SIGKILL)
        served.process.wait()
        token = served.token
    assert len(AnswerStore(path).answers()) == 4  # every answer given before the kill
    with serving(runs_dir) as again:
        assert again.token == token  # the same link works after a restart
        status, answer = call(again.base, token, "POST", "api/answer",
                              {"participant": first.participant, "position": 3,
                               "answer": "left", "ms": 5})  # fmt: skip
        assert (status, answer["error"]) == (409, "this pair was answered already")
        rest = take_test(again.base, token, path, "original", participant=first.participant)
        assert not rest.errors and rest.answered == 11 - 4
        again.stop()
    answers = AnswerStore(path).answers()
    assert len(answers) == 11 and answers["position"].is_unique
    assert answers["picked_original"].all()


def test_fifty_participants_at_once_lose_no_answer(runs_dir):
    path = store_of(runs_dir)
    with serving(runs_dir) as served:
        sessions = [None] * 50

        def one(index):
            sessions[index] = take_test(served.base, served.token, path, "random", seed=index)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        served.stop()
    assert all(s is not None and not s.errors and s.answered == 11 for s in sessions)
    answers = AnswerStore(path).answers()
    assert len(answers) == 50 * 11
    assert answers.groupby("participant")["position"].nunique().eq(11).all()


def test_requests_without_the_token_and_path_tricks_are_refused(runs_dir):
    with serving(runs_dir) as served:
        base, token = served.base, served.token
        image = AnswerStore(store_of(runs_dir)).image_files()
        some_id = next(iter(image))
        for path in ("/", f"/img/{some_id}.png", "/api/protocol", "/static/page.js"):
            assert _status(served.port, path) == 403, path
            assert _status(served.port, path + "?t=wrong" + token[5:]) == 403, path
        assert _status(served.port, f"/img/{some_id}.png?t={token}") == 200
        pair = AnswerStore(store_of(runs_dir)).pairs().iloc[0]
        heads = [
            _raw_get(served.port, f"/img/{pair[key]}.png?t={token}", head=True)
            for key in ("original_image", "other_image")
        ]
        assert heads[0] == heads[1]  # same headers, same length: nothing tells them apart
        tricks = [
            "/img/../answers.db", "/img/..%2Fanswers.db.png", "/img/%2e%2e%2fanswers.db.png",
            "/static/..%2F..%2Fstore.py", "/static/../server.py", "/static/index.html",
            "/../../../../etc/passwd", "/img/" + "0" * 32 + ".png", "/answers.db",
            "/img/" + some_id + ".png/../../answers.db",
        ]  # fmt: skip
        for trick in tricks:
            status, body = _raw_get(served.port, f"{trick}?t={token}")
            assert status in (400, 404, 405), (trick, status)
            assert b"SQLite format" not in body and b"import " not in body and b"root:" not in body
        status, _ = call(base, token, "POST", "api/start", {"colour_vision": "purple"})
        assert status == 422  # validated
        big = {"colour_vision": "normal", "expertise": "x" * 5000}
        assert call(base, token, "POST", "api/start", big)[0] == 413
        served.stop()


def _status(port: int, path: str) -> int:
    return _raw_get(port, path)[0]


def _raw_get(port: int, path: str, head: bool = False):
    """A GET sent byte for byte, as written (no client normalizes the path): (status, body),
    or with `head`, the response's headers but its date."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    headers, _, body = data.partition(b"\r\n\r\n")
    if head:
        return [line for line in headers.split(b"\r\n") if not line.lower().startswith(b"date:")]
    return int(headers.split()[1]), body


def test_mistakes_are_one_line_with_exit_code_2(runs_dir, tmp_path, embedded_photos, capsys):
    from experiments.humantest.__main__ import main
    from tests.conftest import write_photo

    write_photo(tmp_path / "photos" / "cat.png", embedded_photos["skimage:chelsea"])
    photos = f"photos={tmp_path / 'photos'}"
    cases = {
        "cannot write the test into": ["study=losses", f"runs_dir={runs_dir}", "name=x", photos],
        "cannot be loaded": [
            f"models={tmp_path / 'missing.keras'}",
            photos,
            f"runs_dir={tmp_path / 'r'}",
        ],  # fmt: skip
        "practice=99 is out of range": ["study=losses", f"runs_dir={runs_dir}", "practice=99"],
        "unknown key 'colour'": ["study=losses", "colour=1"],
        "add --share": ["study=losses", f"runs_dir={runs_dir}", "host=0.0.0.0", "port=0"],
        "prepared with other settings (practice 3 -> 4": [
            "study=losses",
            f"runs_dir={runs_dir}",
            "practice=4",
            "--results",
        ],  # fmt: skip
    }
    (runs_dir / "humantest" / "x").write_text("")  # where the test's folder would go
    for expected, args in cases.items():
        assert main(args) == 2, expected
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0] and lines[0].startswith("error: "), (
            expected, err,
        )  # fmt: skip
    assert not (tmp_path / "r" / "humantest" / "missing").exists()  # nothing left behind


def test_share_listens_beyond_loopback_and_still_asks_for_the_token(runs_dir):
    with serving(runs_dir, "--share") as served:
        listening = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
        mine = [line for line in listening.splitlines() if f":{served.port} " in line]
        assert mine and all("0.0.0.0:" in line for line in mine), mine
        links = [line for line in served.lines if "open this link" in line]
        assert links and all(f"?t={served.token}" in line for line in links)
        assert not any("127.0.0.1" in line for line in links)  # an address others can reach
        # (requests stay on loopback: this machine's own addresses are not for tests)
        assert _status(served.port, "/") == 403
        assert _status(served.port, f"/?t={served.token}") == 200
        served.stop()
