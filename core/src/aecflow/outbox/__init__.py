"""Events and their delivery: the transactional outbox and its dispatcher."""
