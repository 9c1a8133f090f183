"""Processing jobs: the worker that claims them and runs each in an isolated child."""
