"""The best models in MLflow's registry: logging, aliases, and serving them."""
