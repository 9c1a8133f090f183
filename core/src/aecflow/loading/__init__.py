"""Loading plugins and building the configured backends into a runtime."""
