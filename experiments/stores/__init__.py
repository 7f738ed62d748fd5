"""Where studies live: store URLs, locks, liveness, heartbeats and worker processes."""
