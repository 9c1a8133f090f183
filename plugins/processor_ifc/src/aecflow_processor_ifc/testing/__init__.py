"""Helpers for tests and benchmarks, kept out of the processor's own module path."""
