"""tracklog artifact repository for SFTP servers."""
