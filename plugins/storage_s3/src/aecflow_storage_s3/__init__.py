"""aecflow storage on S3 and S3-compatible servers (in progress)."""
