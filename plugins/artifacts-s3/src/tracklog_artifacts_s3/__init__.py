"""tracklog artifact repository for Amazon S3 and S3-compatible object stores."""
