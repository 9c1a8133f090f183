"""Entry point notify_webhook (in progress: registers nothing yet)."""
