"""What a setting is: the typed schema, study files, overrides, the fingerprint, engine names."""
