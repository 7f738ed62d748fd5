"""Names and small tools every floor may use: errors, secrets masked, MLflow record names, links."""
