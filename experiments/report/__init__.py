"""The comparison report: a study read back from its stores (`store`), compared by its kind
(`comparisons`) with verdicts on the paper's findings (`verdicts`, `paper`), laid out as a PDF
(`pdf`, `figures`, `overview`, `build`) and logged on the study's MLflow run (`publish`).
Run it with `python -m experiments.report`."""
