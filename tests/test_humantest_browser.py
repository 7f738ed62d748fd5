"""A whole real-or-colorized session in headless Chromium, as a participant takes it: the
questions, practice pairs with feedback, test and catch pairs shown for a limited time, the end;
then the results in MLflow and in the report. Screenshots go to `test-artifacts/`."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from experiments.humantest.store import AnswerStore
from tests import test_humantest
from tests.studies_helpers import run_report
from tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.test_humantest import metrics, model_run, serving, store_of

losses_study = test_humantest.losses_study  # the smoke study, made once for this file
runs_dir = test_humantest.runs_dir

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing: .ci/run installs it")
        pytest.skip("Debian's chromium is not installed")
    return CHROMIUM


def test_a_whole_session_in_chromium_with_practice_catch_pairs_and_a_time_limit(
    runs_dir, tmp_path, chromium
):
    from playwright.sync_api import expect, sync_playwright

    # its own test: the module's prepared one has the default protocol, which this one changes
    path = store_of(runs_dir, "browser")
    ARTIFACTS.mkdir(exist_ok=True)
    with (
        serving(runs_dir, "name=browser", "practice=2", "catch=2", "time_limit=1") as served,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 760})  # a phone's screen
        page.goto(f"{served.base}/?t={served.token}")
        expect(page.locator("#practice-count")).to_have_text("2")
        expect(page.locator("#timing")).to_contain_text("shown for 1 s")
        page.check("input[value=normal]")
        page.check("input[value=hobby]")
        page.click("#begin")
        expect(page.locator("#trial")).to_be_visible()
        participant = page.evaluate("Object.entries(localStorage)[0][1]")
        truth = {s.position: s.original_side for s in AnswerStore(path).plan_of(participant)}
        kinds = {s.position: s.kind for s in AnswerStore(path).plan_of(participant)}
        page.screenshot(path=str(ARTIFACTS / "humantest-pair-phone.png"))
        # practice: right once, wrong once, each with its feedback
        for position, right in ((0, True), (1, False)):
            expect(page.locator("#progress")).to_have_text(f"Practice {position + 1} of 2")
            side = (
                truth[position] if right else {"left": "right", "right": "left"}[truth[position]]
            )
            page.click(f"#{side}")
            expect(page.locator("#feedback-text")).to_have_text(
                ("Right: " if right else "Not this time: ")
                + f"the original was on the {truth[position]}."
            )
            page.click("#next")
        for position in range(2, len(truth)):
            expect(page.locator("#progress")).to_have_text(
                f"Pair {position - 1} of {len(truth) - 2}"
            )
            # the time limit: after a second both photos are covered; the answer still counts
            expect(page.locator("#left")).to_have_class("photo covered", timeout=5000)
            expect(page.locator("#right .hidden-note")).to_be_visible()
            if position == 2:
                page.screenshot(path=str(ARTIFACTS / "humantest-covered-phone.png"))
            page.click(f"#{truth[position]}")
        expect(page.locator("#done")).to_be_visible()
        browser.close()
        out = served.stop()
    answers = AnswerStore(path).answers()
    assert len(answers) == len(truth) and set(answers["colour_vision"]) == {"normal"}
    assert set(answers["expertise"]) == {"hobby"}
    assert sorted(kinds.values()).count("catch") == 2 and (answers["kind"] == "catch").sum() == 2
    tests = answers[answers["kind"] == "test"]
    assert (tests["client_ms"] >= 1000).all()  # answered after the pair was covered
    practice = answers[answers["kind"] == "practice"].sort_values("position")
    assert list(practice["picked_original"]) == [1, 0]  # stored, but never counted:
    for alias in ("loss-mse", "loss-classification"):
        values = metrics(runs_dir, model_run(runs_dir, alias))
        assert values["human.answers"] == 3 and values["human.fool_rate"] == 0.0, out
    report = run_report(
        "study=losses", f"runs_dir={runs_dir}", f"reports_dir={tmp_path / 'reports'}"
    )
    assert report.returncode == 0, report.stderr[-2000:]
    assert "Can people tell? people tell loss-classification's colorizations" in report.stdout
    if shutil.which("pdftoppm"):
        subprocess.run(
            ["pdftoppm", "-png", "-r", "60", str(tmp_path / "reports" / "losses.pdf"),
             str(ARTIFACTS / "humantest-report")],
            check=True,
        )  # fmt: skip
