"""aecflow notifier that sends events to Amazon SQS in batches, FIFO-aware."""
