"""Resumable upload sessions: parts, completion and the sweeper of expired ones."""
