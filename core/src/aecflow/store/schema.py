"""Tables of the metadata store (SQLAlchemy Core; the Alembic migrations mirror this file).

Ids are UUIDv7 strings, so ``ORDER BY id`` is creation order and cursors need no tie-breaker.
JSON columns are JSONB on PostgreSQL (GIN-indexed metadata for ``key=value`` filters).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: dt.datetime | None, dialect: sa.Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: sa.Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


#: Indexes that exist on PostgreSQL only (migrations and schema comparisons skip them elsewhere).
POSTGRES_ONLY_INDEXES = frozenset({"ix_files_meta_gin", "ix_files_filename_trgm"})


def include_object(
    obj: object,
    name: str | None,
    type_: str,
    reflected: bool,
    compare_to: object,
    *,
    dialect: str,
) -> bool:
    """Alembic's filter: leave PostgreSQL-only objects out of other dialects' comparisons."""
    return not (type_ == "index" and name in POSTGRES_ONLY_INDEXES and dialect != "postgresql")


JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ID = sa.String(36)

files = sa.Table(
    "files",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project", sa.String(64), nullable=False),
    sa.Column("filename", sa.String(1024), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("content_type", sa.String(255)),
    sa.Column("storage_backend", sa.String(64), nullable=False),
    sa.Column("storage_key", sa.String(1024), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("meta", JSON, nullable=False),
    sa.Column("processing", JSON),
    #: The pipeline's steps: name -> outcome, error, timings, result (``null`` before 0007).
    sa.Column("steps", JSON),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime),
    sa.Column("purged_at", UTCDateTime),
    # Listing is always per project, newest first, by id (UUIDv7): these keep it an index scan.
    sa.Index(None, "project", "id"),
    sa.Index(None, "project", "status", "id"),
    sa.Index(None, "project", "created_at"),
    sa.Index(
        "ix_files_meta_gin",
        "meta",
        postgresql_using="gin",
        postgresql_ops={"meta": "jsonb_path_ops"},
    ).ddl_if(dialect="postgresql"),
    # filename_contains is ``filename ILIKE '%term%'`` on PostgreSQL: pg_trgm serves it
    # (migration 0006 creates the extension first)
    sa.Index(
        "ix_files_filename_trgm",
        "filename",
        postgresql_using="gin",
        postgresql_ops={"filename": "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("file_id", ID, sa.ForeignKey("files.id", ondelete="CASCADE"), nullable=False),
    sa.Column("processor", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # queued | running | done | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("available_at", UTCDateTime, nullable=False),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("traceparent", sa.String(64)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "status", "available_at"),
    sa.Index(None, "file_id"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", ID, primary_key=True),
    # Stable across retries and the same for every destination: webhook-id, SQS dedup id.
    sa.Column("event_id", ID, nullable=False),
    sa.Column("destination", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("project", sa.String(64), nullable=False),
    sa.Column("file_id", ID),
    sa.Column("payload", JSON, nullable=False),
    #: The trace the event belongs to (W3C traceparent), continued by the delivery span.
    sa.Column("traceparent", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | dead
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("available_at", UTCDateTime, nullable=False),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    sa.UniqueConstraint("event_id", "destination"),
    sa.Index(None, "status", "destination", "available_at"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    # SHA-256 of the whole token: tokens are 256-bit random, so a fast hash is enough.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),  # reader | writer | admin
    #: Project names the token may reach; ``["*"]`` is every project.
    sa.Column("projects", JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("last_used_at", UTCDateTime),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("read_only", sa.Boolean, nullable=False),
    #: ``token:<id>``, ``system`` or ``cli``.
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("source_ip", sa.String(64)),
    sa.Column("user_agent", sa.String(512)),
    sa.Column("request_id", sa.String(128)),
    sa.Column("trace_id", sa.String(32)),
    sa.Column("project", sa.String(64)),
    sa.Column("file_id", ID),
    sa.Column("storage_key", sa.String(1024)),
    sa.Column("outcome", sa.String(16), nullable=False),  # ok | error | denied
    sa.Column("error_code", sa.String(64)),
    sa.Column("bytes_in", sa.BigInteger),
    sa.Column("bytes_out", sa.BigInteger),
    sa.Column("duration_s", sa.Float),
    sa.Column("details", JSON),
    #: Optional tamper evidence: SHA-256 over the previous row's hash and this row.
    sa.Column("prev_hash", sa.String(64)),
    sa.Column("row_hash", sa.String(64)),
    sa.Index(None, "project", "id"),
    sa.Index(None, "action", "id"),
    sa.Index(None, "actor", "id"),
    sa.Index(None, "file_id"),
)

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project", sa.String(64), nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    #: The whole file's SHA-256 as the client declared it (required for direct sessions).
    sa.Column("sha256", sa.String(64)),
    sa.Column("part_size", sa.BigInteger, nullable=False),
    sa.Column("part_count", sa.Integer, nullable=False),
    #: Hex SHA-256 of each part, when the client declared them (signed into S3 part URLs).
    sa.Column("part_sha256", JSON),
    sa.Column("content_type", sa.String(255)),
    sa.Column("meta", JSON, nullable=False),
    sa.Column("transport", sa.String(16), nullable=False),  # direct | host
    sa.Column("storage_backend", sa.String(64), nullable=False),
    sa.Column("storage_key", sa.String(1024), nullable=False),
    #: The backend's handle of its multipart upload (S3's UploadId).
    sa.Column("storage_upload_id", sa.String(1024), nullable=False),
    #: The id the file gets when the session completes (fixed up front: it is in the key).
    sa.Column("file_id", ID, nullable=False, unique=True),
    # open | completing | completed | aborted | expired
    sa.Column("status", sa.String(16), nullable=False),
    #: While ``completing``: until when the completing request owns the session.
    sa.Column("lease_until", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    #: When the backend's parts were removed (aborted or expired sessions).
    sa.Column("cleaned_at", UTCDateTime),
    #: The actor (``token:<id>``) that opened the session, for the per-token caps.
    sa.Column("opened_by", sa.String(200)),
    sa.Index(None, "status", "expires_at"),
    sa.Index(None, "project", "status", "id"),
    sa.Index(None, "opened_by", "status"),
)

upload_parts = sa.Table(
    "upload_parts",
    metadata,
    sa.Column("upload_id", ID, sa.ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("etag", sa.String(1024)),
    sa.Column("received_at", UTCDateTime, nullable=False),
)

#: A project's pipeline set through the API; it wins over the configuration.
project_pipelines = sa.Table(
    "project_pipelines",
    metadata,
    sa.Column("project", sa.String(64), primary_key=True),
    sa.Column("pipeline", JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

#: Derived files a processing step wrote, stored under the file's key space.
artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("file_id", ID, sa.ForeignKey("files.id", ondelete="CASCADE"), nullable=False),
    sa.Column("step", sa.String(64), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("media_type", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("storage_key", sa.String(1024), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("file_id", "name"),
)
