"""aecflow processor for IFC models (in progress: the processor lands in a following commit)."""
