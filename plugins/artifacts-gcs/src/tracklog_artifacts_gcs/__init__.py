"""tracklog artifact repository on Google Cloud Storage."""
