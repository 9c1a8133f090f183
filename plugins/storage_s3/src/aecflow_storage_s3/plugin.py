"""Entry point storage_s3 (in progress: registers nothing yet)."""
