"""aecflow notifier that signs and posts events as Standard Webhooks."""
