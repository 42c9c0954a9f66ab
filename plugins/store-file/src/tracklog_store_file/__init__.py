"""tracklog-store-file: File backend store in MLflow's mlruns directory layout."""
