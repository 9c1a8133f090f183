"""upload sessions remember who opened them, for the per-token caps on open sessions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("uploads", sa.Column("opened_by", sa.String(length=200), nullable=True))
    op.create_index(
        op.f("ix_uploads_opened_by_status"), "uploads", ["opened_by", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_uploads_opened_by_status"), table_name="uploads")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("opened_by")
