"""The metadata store: tables, engine set-up and migrations."""
