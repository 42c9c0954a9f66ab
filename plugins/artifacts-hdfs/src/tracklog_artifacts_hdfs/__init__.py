"""tracklog artifact repository for HDFS (WebHDFS and libhdfs)."""
