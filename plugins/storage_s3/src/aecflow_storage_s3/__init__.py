"""aecflow storage on S3 and S3-compatible servers: obstore data plane, SSE, presigned downloads, residency checks."""
