"""files, jobs and outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aecflow.store.schema import JSON, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("storage_backend", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=1024), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("meta", JSON, nullable=False),
        sa.Column("processing", JSON, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.Column("purged_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # metadata key=value filters use JSONB containment (@>), which this index serves
        op.create_index(
            "ix_files_meta_gin",
            "files",
            ["meta"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"meta": "jsonb_path_ops"},
        )
    op.create_index(
        op.f("ix_files_project_created_at"), "files", ["project", "created_at"], unique=False
    )
    op.create_index(op.f("ix_files_project_id"), "files", ["project", "id"], unique=False)
    op.create_index(
        op.f("ix_files_project_status_id"), "files", ["project", "status", "id"], unique=False
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.String(length=36), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("available_at", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", "destination", name=op.f("uq_outbox_event_id_destination")),
    )
    op.create_index(
        op.f("ix_outbox_status_destination_available_at"),
        "outbox",
        ["status", "destination", "available_at"],
        unique=False,
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("file_id", sa.String(length=36), nullable=False),
        sa.Column("processor", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("available_at", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("traceparent", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_jobs_file_id_files"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_file_id"), "jobs", ["file_id"], unique=False)
    op.create_index(
        op.f("ix_jobs_status_available_at"), "jobs", ["status", "available_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_jobs_status_available_at"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_file_id"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_index(op.f("ix_outbox_status_destination_available_at"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index(op.f("ix_files_project_status_id"), table_name="files")
    op.drop_index(op.f("ix_files_project_id"), table_name="files")
    op.drop_index(op.f("ix_files_project_created_at"), table_name="files")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_files_meta_gin", table_name="files")
    op.drop_table("files")
