"""A study's run and its end: orchestration, the trials table, the best model, the Pareto front."""
