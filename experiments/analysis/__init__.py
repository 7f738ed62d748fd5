"""Reading results: the best trial over seeds, the Pareto front."""
