"""Alembic environment: always run by the core with a connection it already holds."""

from __future__ import annotations

import functools

from alembic import context

from aecflow.store.schema import include_object, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `aecflow db upgrade`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=functools.partial(include_object, dialect=connection.dialect.name),
)
with context.begin_transaction():
    context.run_migrations()
