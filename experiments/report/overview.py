"""The report's first page: what was run (study, trials, profile, data, engine, hardware, code),
and how to read the numbers."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

from experiments.common import records as r
from experiments.common.redact import masked_url
from experiments.report.stored_study import SETTING_PARAMS, StoredStudy, download_artifact

READING = [
    "Accuracy is the paper's metric: Keras' `accuracy` on the network's two a/b outputs, which "
    "Keras resolves to categorical accuracy - the share of pixels where the larger of the two "
    "predicted channels (a or b) is also the larger true one, here taken from the unrounded "
    "a/b. It says little about colour quality. It is taken at the epoch of lowest validation "
    "loss (the weights early stopping keeps), in percent, for validation and training data.",
    "Validation loss: MSE on a/b / 128 (lower is better). PSNR (dB) and SSIM on RGB, higher is "
    "better; ΔE2000: mean CIEDE2000 colour difference in LAB, lower is better. All on the "
    "validation photos. Mean ± std are over seeds (sample std); one value means one trial.",
    "Verdicts are reproduced, not reproduced or inconclusive, each with the 95 % interval and "
    "the test that decided it; fewer than 3 seeds a group is inconclusive by rule.",
]


def _when(millis: int | None) -> str:
    if not millis:
        return "?"
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def description(stored: StoredStudy, scratch: Path) -> str:
    """The study's description from the study.yaml the run stored (the file may have changed)."""
    import yaml

    path = download_artifact(stored, stored.parent["run_id"], r.STUDY_ARTIFACT, scratch)
    try:
        raw = yaml.safe_load(path.read_text()) if path else {}
    except (OSError, yaml.YAMLError):
        raw = {}
    return " ".join(str((raw or {}).get("description", "")).split())


def _engine_part(text: str) -> str:
    """A stored sampler/pruner dict ("{'type': 'grid', 'seed': 0}") as "grid (seed 0)"."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if not isinstance(value, dict) or "type" not in value:
        return text
    options = ", ".join(f"{k} {v}" for k, v in value.items() if k != "type")
    return f"{value['type']}" + (f" ({options})" if options else "")


def trial_counts(stored: StoredStudy) -> str:
    parts = [
        f"{stored.count('COMPLETE')} finished",
        f"{stored.count('PRUNED')} pruned",
        f"{stored.count('FAIL')} failed",
    ]
    infeasible = stored.trials["fail_reason"].astype(str).str.startswith("InfeasibleArchitecture")
    if infeasible.any():
        parts[-1] += f" ({int(infeasible.sum())} could not be built)"
    if stored.count("RUNNING"):
        parts.append(f"{stored.count('RUNNING')} unfinished (running or killed)")
    if stored.retried:
        parts.append(f"{stored.retried} killed trial(s) rerun, counted once")
    return ", ".join(parts)


def fixed_settings(stored: StoredStudy) -> str:
    """Trial settings every trial shared (the study's fixed values and the profile's)."""
    trials, parts = stored.trials, []
    for name in SETTING_PARAMS:
        if name in trials and name not in stored.space:
            found = trials[name].dropna().astype(str).unique()
            if len(found) == 1:
                parts.append(f"{name} {found[0]}")
    return ", ".join(parts) or "–"


def _tagged(tags: dict, prefix: str, leave_out: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{key.removeprefix(prefix)} {value}"
        for key, value in sorted(tags.items())
        if key.startswith(prefix) and key not in leave_out
    ]


def overview_items(stored: StoredStudy, about: str) -> list[tuple[str, str]]:
    """What was run, as (item, value) pairs for the first page."""
    params, tags = stored.params, stored.tags
    size = params.get("image_size", "?")
    skipped = [
        f"{params[k]} {k.removeprefix('skipped_')}"
        for k in r.SKIPPED_METRICS
        if params.get(k, "0") != "0"
    ]
    hardware = [tags.get("host.platform", "?"), f"Keras backend {tags.get(r.BACKEND_TAG, '?')}"]
    hardware += _tagged(tags, r.HOST_TAG_PREFIX, ("host.platform", "host.python"))
    versions = [f"python {tags['host.python']}"] if "host.python" in tags else []
    versions += _tagged(tags, r.VERSION_TAG_PREFIX)
    stores = f"MLflow {masked_url(stored.tracking_uri)}"
    if stored.storage_url:
        stores += f"; Optuna {masked_url(stored.storage_url)}"
    budgets = ""
    if "epochs" in stored.space and "epochs" in stored.trials:
        pairs = zip(stored.trials["space.epochs"], stored.trials["epochs"], strict=True)
        budgets = "; epoch budgets trained: " + ", ".join(
            f"{b} -> {t}" for b, t in sorted({(int(b), int(t)) for b, t in pairs})
        )
    partial = "; the study has not finished, the tables cover the trials on record"
    name = (
        stored.name if stored.definition == stored.name else f"{stored.name} ({stored.definition})"
    )
    return [
        ("Study", f"{name}: {about}" if about else name),
        (
            "Trials",
            f"{stored.completeness()}: {trial_counts(stored)}"
            + (partial if stored.is_partial else ""),
        ),
        ("Profile", f"{params.get('profile', '?')}{budgets}"),
        (
            "Dataset",
            f"{params.get('dataset', '?')}: {params.get('dataset_photos', '?')} photos, "
            f"{params.get('train_images', '?')} training / {params.get('val_images', '?')} "
            f"validation images, image size {size}x{size}"
            + (f"; skipped {', '.join(skipped)}" if skipped else ""),
        ),
        (
            "Engine",
            f"{stored.engine}: sampler {_engine_part(params.get('sampler', '?'))}, pruner "
            f"{_engine_part(params.get('pruner', '?'))}; "
            + ("objectives (Pareto front) " if stored.is_multi else "objective ")
            + ", ".join(f"{metric} ({direction})" for metric, direction in stored.objectives),
        ),
        ("Search space", ", ".join(stored.space)),
        ("Fixed settings", fixed_settings(stored)),
        ("Fingerprint", tags.get(r.FINGERPRINT_TAG, "– (made before fingerprints)")),
        ("Hardware", ", ".join(hardware)),
        ("Packages", ", ".join(versions) or "?"),
        ("Code", f"git commit {tags.get(r.GIT_COMMIT_TAG, '?')}"),
        (
            "Run",
            f"{_when(stored.parent['start'])} to {_when(stored.parent['end'])} "
            f"(study run {stored.parent['status'].lower()})",
        ),
        ("Report built", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC") + f" from {stores}"),
    ]
