"""Entry point notify_sqs (in progress: registers nothing yet)."""
