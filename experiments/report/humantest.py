"""The report's "Can people tell?" section: the paper's human test beside ours, read from what the
study's run holds (`human/summary.json`, written by `python -m experiments.humantest`): the fool
rate of each model with its exact interval and verdict, the per-photo rates, the models compared,
and the pairs people were shown."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from experiments.humantest import SUMMARY_ARTIFACT
from experiments.report.stored_study import StoredStudy, download_artifact
from experiments.report.tables import Table

HEADING = "Can people tell?"
PAIRS_ARTIFACT = "human/pairs.png"


@dataclass
class HumanSection:
    """What the section shows: its paragraphs, tables, picture and verdict sentences."""

    paragraphs: list[str]
    tables: list[Table]
    picture: Path | None
    verdicts: list[str]


def _pct(value: float) -> str:
    return "" if pd.isna(value) else f"{100 * value:.1f} %"


def human_section(stored: StoredStudy, scratch: Path) -> HumanSection | None:
    """The section, or None when no test with people was run on this study."""
    run_id = stored.parent["run_id"]
    path = download_artifact(stored, run_id, SUMMARY_ARTIFACT, scratch / "human")
    if path is None:
        return None
    summary = json.loads(path.read_text())
    paper, people, answers = summary["paper"], summary["participants"], summary["answers"]
    protocol = summary.get("protocol", {})
    limit = protocol.get("time_limit") or 0
    paragraphs = [
        f"The paper: its authors' friends and course mates were shown original and colorized "
        f"landscapes and told {paper['told_apart']} of {paper['photos']} apart "
        f"({100 * paper['fool_rate']:.0f} % fooled). Zhang, Isola and Efros (2016) fooled "
        f"people on {100 * summary['zhang_fool_rate']:.0f} % of pairs; 50 % means people cannot "
        "tell at all.",
        f"Ours: {people['started']} participant(s) ({people['finished']} finished; "
        f"{people['flagged']} missed a catch pair and are counted apart) gave "
        f"{answers['counted']} counted answers. Each saw every test photo once per model, the "
        f"original on a random side, in an order of their own, after {protocol.get('practice', 0)}"
        f" practice pairs with feedback (not counted), with {protocol.get('catch', 0)} catch pairs "
        f"(original against gray) mixed in; pairs were {protocol.get('size', '?')} px a side and "
        + (f"shown for {limit:g} s." if limit else "shown until the answer.")
        + f" Colour vision: {_counts(people['colour_vision'])}; work with photos: "
        f"{_counts(people['expertise'])}.",
        f"Verdicts rest on the {summary['test']}: reproduced when the interval lies below 50 %, "
        "not reproduced when it lies at or above 40 % (people fooled nearly as often as by a "
        f"coin), inconclusive otherwise. Models are compared by {summary['comparison_test']}.",
    ]
    rates = pd.DataFrame(summary["rates"])
    tables = [_rates_table(rates)]
    photos = pd.DataFrame(summary["per_photo"])
    if not photos.empty:
        tables.append(_photos_table(photos))
    picture = download_artifact(stored, run_id, PAIRS_ARTIFACT, scratch / "human-pairs")
    return HumanSection(paragraphs, tables, picture, list(summary["verdicts"]))


def _counts(counts: dict) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items()) or "none said"


def _rates_table(rates: pd.DataFrame) -> Table:
    rows = [
        [
            row["model"], str(row["participants"]), f"{row['fooled']} of {row['answers']}",
            _pct(row["fool_rate"]), f"{_pct(row['ci_low'])} to {_pct(row['ci_high'])}",
            f"{row['p_vs_chance']:.3g}", row["verdict"],
        ]
        for _, row in rates.iterrows()
    ]  # fmt: skip
    return Table(
        name="human",
        title=f"{HEADING} Fool rate of each model (colorized picked as the original)",
        columns=["Model", "People", "Fooled", "Fool rate", "95 % CI (exact)", "p vs 50 %",
                 "Verdict"],
        rows=rows,
        frame=rates,
        notes=["The paper: 1 of 18 (6 %) fooled. p: exact binomial test against 50 %."],
    )  # fmt: skip


def _photos_table(photos: pd.DataFrame) -> Table:
    rows = [
        [
            row["model"],
            row["photo"],
            f"{row['fooled']} of {row['answers']}",
            _pct(row["fool_rate"]),
        ]
        for _, row in photos.iterrows()
    ]
    return Table(
        name="human-photos",
        title="Fool rate on each test photo",
        columns=["Model", "Photo", "Fooled", "Fool rate"],
        rows=rows,
        frame=photos,
        wide={1},
    )
