"""A test's results from its stored answers: the tables, the verdicts, a picture of the pairs, and
their lines for the console. Everything is computed from the answer store, never from memory."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from experiments.humantest import verdicts as v
from experiments.humantest.protocol import CATCH, PRACTICE, TEST
from experiments.humantest.store import AnswerStore

MAX_PHOTOS_SHOWN = 3


@dataclass
class Results:
    models: pd.DataFrame
    photos: pd.DataFrame
    answers: pd.DataFrame
    comparisons: list[v.Comparison]
    summary: dict

    def lines(self) -> list[str]:
        """What the console says of the results."""
        s = self.summary["participants"]
        lines = [
            f"{s['started']} participants ({s['finished']} finished, {s['flagged']} flagged for "
            f"missing a catch pair), {self.summary['answers']['counted']} test answers counted"
        ]
        lines += [f"  {sentence}" for sentence in self.summary["verdicts"]]
        return lines


def compute(store: AnswerStore, models: list[str]) -> Results:
    """Tables, verdicts and the summary of everything stored so far."""
    answers = store.answers()
    participants = store.participants()
    model_rows = v.model_table(answers, models)
    photo_rows = v.photo_table(answers)
    comparisons = v.compare_models(answers, models) if len(models) > 1 else []
    flagged = v.flagged_participants(answers)
    counted_rows = v.counted(answers, flagged)
    sentences = [
        v.paper_sentence(model, v.rate_of(counted_rows[counted_rows["model"] == model]))
        for model in models
    ]
    sentences += [comparison.sentence() for comparison in comparisons]
    summary = {
        "updated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "protocol": store.meta("protocol", {}),
        "study": store.meta("study"),
        "models": store.meta("models", []),
        "photos": store.meta("photos", []),
        "paper": {
            "told_apart": v.PAPER_TOLD_APART,
            "photos": v.PAPER_PHOTOS,
            "fool_rate": v.paper_rate().rate,
        },
        "zhang_fool_rate": v.ZHANG_FOOL_RATE,
        "test": v.TEST_NAME,
        "comparison_test": v.COMPARISON_TEST,
        "participants": {
            "started": len(participants),
            "finished": int(participants["finished"].notna().sum()),
            "flagged": len(flagged),
            "colour_vision": participants["colour_vision"].value_counts().to_dict(),
            "expertise": participants["expertise"]
            .replace("", "not said")
            .value_counts()
            .to_dict(),
        },
        "answers": {
            "test": int((answers["kind"] == TEST).sum()),
            "counted": len(counted_rows),
            "practice": int((answers["kind"] == PRACTICE).sum()),
            "catch": int((answers["kind"] == CATCH).sum()),
        },
        "rates": model_rows.to_dict("records"),
        "per_photo": photo_rows.to_dict("records"),
        "comparisons": [
            {
                "first": c.first,
                "second": c.second,
                "verdict": c.verdict(),
                "difference": c.difference[0],
                "ci_low": c.difference[1],
                "ci_high": c.difference[2],
                "p": c.p_value,
                "p_adjusted": c.p_adjusted,
                "sentence": c.sentence(),
            }
            for c in comparisons
        ],  # fmt: skip
        "verdicts": sentences,
    }
    return Results(model_rows, photo_rows, answers, comparisons, summary)


def pairs_picture(store: AnswerStore, folder: Path, path: Path) -> Path | None:
    """gray | each model | original for the first few test photos, as shown to people."""
    from colorize import lab
    from experiments.trials.trial_figures import close, strip_figure

    pairs = store.pairs()
    tests = pairs[pairs["kind"] == TEST]
    if tests.empty:
        return None
    files = store.image_files()
    photos = list(dict.fromkeys(tests["photo"]))[:MAX_PHOTOS_SHOWN]
    models = list(dict.fromkeys(tests["model"]))

    def read(image_id: str) -> np.ndarray:
        return np.asarray(Image.open(folder / files[image_id]).convert("RGB"))

    originals, by_model = [], {model: [] for model in models}
    for photo in photos:
        mine = tests[tests["photo"] == photo]
        originals.append(read(mine.iloc[0]["original_image"]))
        for model in models:
            row = mine[mine["model"] == model]
            by_model[model].append(read(row.iloc[0]["other_image"]) if len(row) else originals[-1])
    gray = [lab.rgb_to_lab(rgb)[..., 0] / 100.0 for rgb in originals]
    columns = [("gray", gray), *by_model.items(), ("original", originals)]
    figure = strip_figure(columns, "")
    figure.savefig(path, dpi=110, bbox_inches="tight")
    close(figure)
    return path
