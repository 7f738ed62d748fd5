"""`study=losses`: regression against classification, run for real at the smoke profile; the
registry names each head's best model, both colorize a folder and answer as MLflow models, and
the report compares the heads on what they share, with a verdict on colour."""

from __future__ import annotations

import json
import shutil
import subprocess

import mlflow
import numpy as np
import pytest
from scipy.stats import t as t_distribution

from tests.needs import needs
from tests.studies_helpers import (
    copy_stores,
    load_trials,
    mlflow_runs,
    run_cli,
    run_colorize,
    run_report,
)

ALIASES = ("champion", "loss-mse", "loss-classification")


@pytest.fixture(scope="module")
def losses_study(smoke_losses_study, tmp_path_factory):
    """This module's copy of the session's smoke `losses` study: (runs_dir, its command)."""
    source, result = smoke_losses_study
    return copy_stores(source, tmp_path_factory.mktemp("losses") / "mlruns"), result


def _registry(runs_dir):
    return mlflow.MlflowClient(f"sqlite:///{runs_dir.resolve() / 'mlflow.db'}")


def test_each_head_trains_and_the_registry_names_its_best_model(losses_study):
    runs_dir, result = losses_study
    trials = load_trials(runs_dir, "losses")
    heads = {t.params["loss"]: t for t in trials if t.state.name == "COMPLETE"}
    assert set(heads) == {"mse", "classification"}
    client = _registry(runs_dir)
    for head, trial in heads.items():
        version = client.get_model_version_by_alias("losses", f"loss-{head}")
        assert version.run_id == trial.user_attrs["mlflow_run_id"]
        assert f"models:/losses@loss-{head}" in result.stdout
    # the champion is the best by the study's objective, validation CIEDE2000 (minimized)
    best = min(heads.values(), key=lambda t: (t.value, t.number))
    assert (
        client.get_model_version_by_alias("losses", "champion").run_id
        == best.user_attrs["mlflow_run_id"]
    )
    latest = max(client.search_model_versions("name='losses'"), key=lambda v: int(v.version))
    assert latest.run_id == best.user_attrs["mlflow_run_id"]  # `latest` is the champion too


def test_a_rerun_changes_no_alias_and_registers_nothing_new(losses_study):
    runs_dir, _ = losses_study
    client = _registry(runs_dir)
    before = {a: client.get_model_version_by_alias("losses", a).version for a in ALIASES}
    count = len(client.search_model_versions("name='losses'"))
    result = run_cli("study=losses", "profile=smoke", f"runs_dir={runs_dir}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "already registered" in result.stdout
    assert {a: client.get_model_version_by_alias("losses", a).version for a in ALIASES} == before
    assert len(client.search_model_versions("name='losses'")) == count


@pytest.mark.parametrize("alias", ["loss-mse", "loss-classification"])
def test_each_aliased_model_colorizes_a_folder_and_scores_against_gray(
    losses_study, tmp_path, embedded_photos, alias
):
    from tests.conftest import write_photo

    runs_dir, _ = losses_study
    write_photo(tmp_path / "in" / "coffee.png", embedded_photos["skimage:coffee"])
    uri = f"models:/losses@{alias}"
    result = run_colorize(
        "--model", uri, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
        runs_dir=runs_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "coffee.png").is_file()
    scored = run_colorize(
        "evaluate", "--model", uri, "--photos", str(tmp_path / "in"), "--json",
        runs_dir=runs_dir,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-2000:]
    means = json.loads(scored.stdout)["mean"]
    for key in ("ab_auc", "ab_auc_rebalanced", "colorfulness_pred", "colorfulness_true"):
        assert np.isfinite(means["model"][key]) and np.isfinite(means["gray"][key])
    assert means["gray"]["colorfulness_pred"] < 0.05  # gray has no colour (rounding aside)
    assert means["model"]["colorfulness_true"] == means["gray"]["colorfulness_true"] > 0


def test_the_classification_model_answers_as_an_mlflow_model(losses_study, embedded_photos):
    import base64
    import io

    import pandas as pd
    from PIL import Image

    runs_dir, _ = losses_study
    mlflow.set_tracking_uri(f"sqlite:///{runs_dir.resolve() / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/losses@loss-classification")
    buffer = io.BytesIO()
    Image.fromarray(embedded_photos["skimage:coffee"]).resize((48, 32)).save(buffer, "PNG")
    answer = model.predict(pd.DataFrame({"image": [base64.b64encode(buffer.getvalue()).decode()]}))
    colour = Image.open(io.BytesIO(base64.b64decode(answer["image"][0])))
    assert colour.size == (48, 32) and colour.mode == "RGB"


@needs("poppler's pdftotext is not installed", shutil.which("pdftotext") is not None)
def test_the_report_compares_the_heads_on_colour_with_a_verdict(losses_study, tmp_path):
    runs_dir, _ = losses_study
    result = run_report("study=losses", f"runs_dir={runs_dir}", f"reports_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    text = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "losses.pdf"), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Regression or classification" in text
    assert "classification" in text and "Colourful" in text and "Rebal. AuC" in text
    verdict = next(
        line for line in text.splitlines() if "colours more vividly than regression:" in line
    )
    # the verdict the stored values imply: each head's colourfulness over its seeds, as MLflow
    # holds it; a Welch interval (its formula here) and at least 3 seeds a head to decide
    runs = mlflow_runs(runs_dir, "losses")
    trials = runs[runs["tags.colorize.role"] == "trial"]
    heads = {
        head: trials.loc[trials["params.loss"] == head, "metrics.colorfulness_pred"].to_numpy()
        for head in ("classification", "mse")
    }
    gap = heads["classification"].mean() - heads["mse"].mean()
    expected = "inconclusive"
    if min(map(len, heads.values())) >= 3:
        (na, va), (nb, vb) = ((len(v), v.var(ddof=1) / len(v)) for v in heads.values())
        df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
        half = t_distribution.ppf(0.975, df) * np.sqrt(va + vb)
        if gap - half > 0:
            expected = "reproduced"
        elif gap + half < 0:
            expected = "not reproduced"
    said = verdict.split("colours more vividly than regression:", 1)[1].strip()
    assert said.startswith(expected), (said, expected, heads)
    assert f"{gap:+.2f}" in text  # the gap, classification minus regression, in the evidence
    assert "Side by side: gray | regression (mse) | classification | truth" in text
    table = text[text.index("Regression or classification") :].split("Colourful:")[0]
    assert "Val. loss" not in table  # each head's loss is its own: never compared


def test_the_report_judges_what_each_head_claims(losses_study, monkeypatch):
    """The verdicts come from the heads' cards: a claim added to a card is judged (on its own
    metric, by a Welch interval over seeds), a card without claims adds none."""
    from dataclasses import replace

    from colorize.head_cards import HEAD_CARDS, Claim
    from experiments.report.comparisons import losses
    from experiments.report.stored_study import load_study_records

    stored = load_study_records("losses", str(losses_study[0]))
    before = [v.finding for v in losses.verdicts(stored)]
    assert before == [claim.finding for card in HEAD_CARDS.values() for claim in card.claims]
    claim = Claim("ab_auc", True, "mse", "Classification has the higher a/b AuC")
    card = HEAD_CARDS["classification"]
    monkeypatch.setitem(HEAD_CARDS, "classification", replace(card, claims=(claim,)))
    monkeypatch.setitem(HEAD_CARDS, "mse", replace(HEAD_CARDS["mse"], claims=()))
    (verdict,) = losses.verdicts(stored)
    assert verdict.finding == claim.finding
    assert "a/b AuC, classification minus regression (mse)" in verdict.evidence
    assert "Welch" in verdict.evidence


def test_mlflow_serves_the_classification_model(losses_study, embedded_photos):
    """The classification head's registered model on MLflow's own server (`mlflow models
    serve`): its bins decoded to a/b there as they are here."""
    from PIL import Image

    from tests.test_serving import assert_colorized, serve_and_colorize

    photo = Image.fromarray(embedded_photos["skimage:chelsea"]).resize((70, 50))
    colorized = serve_and_colorize("models:/losses@loss-classification", losses_study[0], photo)
    assert_colorized(colorized, (70, 50))
