"""tracklog artifact repository for FTP and FTPS servers."""
