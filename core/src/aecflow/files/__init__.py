"""Files: ingest and publish, reads, and the changes of a file's life (reprocess, delete, purge)."""
