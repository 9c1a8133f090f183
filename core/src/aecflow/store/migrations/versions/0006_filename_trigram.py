"""a trigram index for filename substring search (PostgreSQL only)

``filename_contains`` compiles to ``filename ILIKE '%term%'`` on PostgreSQL, which no B-tree
can serve: every search read the whole project. pg_trgm's GIN index serves ILIKE with a
leading wildcard. The extension is trusted (PostgreSQL 13+), so the database owner may create
it; it is left in place on downgrade (other objects may use it). SQLite has no such index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_files_filename_trgm",
        "files",
        ["filename"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"filename": "gin_trgm_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_files_filename_trgm", table_name="files")
