"""Can people tell? A real-or-colorized test with people: pairs prepared once, a web page that
asks which photo is the original, every answer stored as it is given, and the fool rate of each
model with its verdict in MLflow and the report.

The rest of the project uses: `SUMMARY_ARTIFACT` (where the study's run holds the results) and
`verdicts` (the tests behind them), e.g. for the report's "Can people tell?" section.
"""

from experiments.humantest.mlflow_results import SUMMARY_ARTIFACT

__all__ = ["SUMMARY_ARTIFACT"]
