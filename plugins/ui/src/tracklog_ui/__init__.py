"""tracklog web UI."""
