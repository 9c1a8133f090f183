"""Settings: ``aecflow.toml``, environment overrides and secret references.

Precedence: defaults < the TOML file (``--config`` or ``AECFLOW_CONFIG``) < environment
variables ``AECFLOW_<SECTION>__<KEY>`` (``__`` separates levels; a number indexes a list, e.g.
``AECFLOW_NOTIFIERS__0__URL``). Backend tables (``[storage]``, ``[[notifiers]]``,
``[processing.processors.NAME]``) carry the plugin's own keys, validated at start-up by the
config model the plugin registered.

Unknown keys never stop start-up: each is logged as a warning naming the key and where it came
from (the file or the environment variable) and then left out, as is an ``AECFLOW_STORAGE_ROOT``
that meant ``AECFLOW_STORAGE__ROOT``. Settings built in code (``Settings(...)``) stay strict.

Secrets are given by reference, ``{ env = "NAME" }`` or ``{ file = "/path" }``, and resolved
into a copy that only the plugin's factory sees; listings show the settings as written.
"""

from __future__ import annotations

import itertools
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import pydantic

from aecflow.errors import ConfigError

ENV_PREFIX = "AECFLOW_"
log = logging.getLogger("aecflow.config")
MiB = 1024**2
GiB = 1024**3


class _Section(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class _BackendTable(pydantic.BaseModel):
    """A table whose other keys belong to the plugin named by ``backend``."""

    model_config = pydantic.ConfigDict(extra="allow")

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DatabaseSettings(_Section):
    #: SQLAlchemy async URL; default: SQLite file ``<data_dir>/aecflow.db``.
    url: str | None = None
    #: Run migrations when a flow opens (serialised with an advisory lock on PostgreSQL).
    migrate_on_start: bool = True
    echo: bool = False


class StorageSettings(_BackendTable):
    backend: str = "local"


class ProcessorSettings(_BackendTable):
    """``[processing.processors.NAME]``: limits for one processor plus its own options."""

    enabled: bool = True
    timeout_s: float | None = None
    memory_limit_mb: int | None = None


class ProjectProcessingSettings(_Section):
    """``[processing.projects.NAME]``: one project's own pipeline."""

    pipeline: list[str] | None = None


class ProcessingSettings(_Section):
    timeout_s: float = pydantic.Field(1800, gt=0)
    memory_limit_mb: int = pydantic.Field(4096, ge=64)
    #: Files processed at once by one worker process.
    concurrency: int = pydantic.Field(2, ge=1, le=256)
    #: Attempts for infrastructure failures (crash, timeout) before a job ends failed.
    max_attempts: int = pydantic.Field(3, ge=1)
    #: First delay before a crashed job is tried again; doubles per attempt (with jitter).
    retry_backoff_s: float = pydantic.Field(10.0, gt=0)
    #: How long a claimed job stays ours without renewal.
    lease_s: float = pydantic.Field(60, ge=2)
    #: Refuse uploads that no processor accepts (HTTP 415) instead of storing them unprocessed.
    refuse_unprocessable: bool = False
    processors: dict[str, ProcessorSettings] = {}
    #: The processors each file runs through, in order (those that accept it). Unset: the
    #: first processor by name that accepts the file, alone.
    pipeline: list[str] | None = None
    #: Per project, a pipeline used instead of ``pipeline`` (the API can override it again).
    projects: dict[str, ProjectProcessingSettings] = {}


class NotifierSettings(_BackendTable):
    backend: str
    #: The destination's name in logs, dead letters and metrics; default: the backend name.
    name: str | None = None


class OutboxSettings(_Section):
    max_attempts: int = pydantic.Field(10, ge=1)
    backoff_base_s: float = pydantic.Field(2.0, gt=0)
    backoff_max_s: float = pydantic.Field(3600.0, gt=0)
    lease_s: float = pydantic.Field(60, ge=2)
    batch_size: int = pydantic.Field(100, ge=1)


class BreakerSettings(_Section):
    """Circuit breakers, one per dependency (the storage backend, each notifier destination)."""

    #: Consecutive health failures (connection errors, timeouts, 5xx, 429) that open a circuit.
    failure_threshold: int = pydantic.Field(5, ge=1)
    #: Seconds an open circuit waits before letting one probe through.
    reset_timeout_s: float = pydantic.Field(30.0, gt=0)


class UploadSettings(_Section):
    #: Largest file accepted, enforced while streaming (HTTP 413).
    max_size: int = pydantic.Field(5 * GiB, ge=1)
    #: Uploads the host receives at once; more get 503 with Retry-After. Memory per upload is
    #: about one 1 MiB chunk per storage write in flight, so this bounds upload memory.
    max_concurrent: int = pydantic.Field(64, ge=1)
    #: Uploads (and session parts) one token may stream at once; more get 429. Keeps one
    #: client from holding every slot of ``max_concurrent``.
    max_concurrent_per_token: int = pydantic.Field(8, ge=1)
    #: Seconds a request body may stall (no bytes) before the request is answered 408 and
    #: its connection closed; a slow client cannot hold an upload slot for ever.
    body_idle_timeout_s: float = pydantic.Field(60.0, gt=0)
    #: Open upload sessions (and the bytes they declare) allowed per project and per token;
    #: beyond them, opening another session answers 429 ``upload_quota_exceeded``.
    max_open_sessions_per_project: int = pydantic.Field(1000, ge=1)
    max_open_sessions_per_token: int = pydantic.Field(100, ge=1)
    max_open_bytes_per_project: int = pydantic.Field(2 * 1024 * GiB, ge=1)
    max_open_bytes_per_token: int = pydantic.Field(500 * GiB, ge=1)
    #: Part size of resumable upload sessions when the client does not choose one; grown so a
    #: file never needs more than 10,000 parts (S3's limit).
    part_size: int = pydantic.Field(16 * MiB, ge=5 * MiB, le=5 * GiB)
    #: Seconds an upload session stays open; then it expires and its parts are removed.
    session_ttl_s: float = pydantic.Field(24 * 3600.0, gt=0)
    #: How often a worker removes the parts of expired and aborted sessions.
    sweep_interval_s: float = pydantic.Field(60.0, gt=0)


class AuditSettings(_Section):
    #: Chain rows by hash (``aecflow audit verify`` detects edits); serialises audit writes.
    hash_chain: bool = False


class AuthSettings(_Section):
    #: ``token``: bearer tokens on every endpoint but /health. ``none``: no authentication,
    #: refused unless the server listens on a loopback address.
    mode: Literal["token", "none"] = "token"
    #: Failed authentications allowed per source address per minute; past them, a request
    #: whose token does not authenticate gets 429 (a valid token is never locked out).
    failures_per_minute: int = pydantic.Field(20, ge=1)


class TelemetrySettings(_Section):
    """What ``aecflow serve`` and ``aecflow worker`` export (needs ``aecflow[telemetry]``).

    The OTLP exporter reads the standard ``OTEL_EXPORTER_OTLP_*`` environment variables.
    """

    exporter: Literal["none", "console", "otlp"] = "none"
    service_name: str = "aecflow"
    #: Serve metrics in Prometheus format at ``/metrics`` (needs prometheus-client).
    prometheus: bool = False


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = pydantic.Field(8000, ge=0, le=65535)
    #: Proxies whose ``X-Forwarded-For``/``X-Forwarded-Proto`` are believed (addresses or
    #: networks, ``"*"`` for any). Empty: the headers are ignored and the peer address is the
    #: client's (what the audit log and the failure limiter see).
    forwarded_allow_ips: list[str] = []
    #: Largest request line plus headers, in bytes; beyond it, 431 and the connection closes.
    max_header_bytes: int = pydantic.Field(64 * 1024, ge=1024)
    #: Seconds a client has to send a complete request line and headers, from connecting (or
    #: from the previous response); then 408 and the connection closes.
    header_timeout_s: float = pydantic.Field(30.0, gt=0)
    #: Seconds an idle keep-alive connection stays open between requests.
    keep_alive_timeout_s: int = pydantic.Field(5, ge=1)
    #: Browser origins (``https://app.example.com``, or ``"*"``) allowed to call the API from
    #: their pages (CORS: tus, Uppy); empty: no CORS headers, same-origin pages only.
    cors_origins: list[str] = []
    #: Seconds a browser may cache a CORS preflight answer.
    cors_max_age_s: int = pydantic.Field(600, ge=0)

    @pydantic.field_validator("forwarded_allow_ips", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """``AECFLOW_SERVER__FORWARDED_ALLOW_IPS=10.0.0.1,10.0.0.2`` arrives as one string."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


class WorkerSettings(_Section):
    #: Run a worker and an outbox dispatcher inside the process that opens the flow.
    embedded: bool = True
    poll_interval_s: float = pydantic.Field(1.0, gt=0)
    #: How often a running worker removes storage temp files a killed process left behind.
    temp_sweep_interval_s: float = pydantic.Field(3600.0, gt=0)
    #: Age after which such a temp file counts as left behind (live writes keep theirs fresh).
    temp_max_age_s: float = pydantic.Field(24 * 3600.0, gt=0)
    #: How often a running worker removes stored objects no file row owns (a host killed
    #: between the storage put and the row's commit); 0 turns the sweep off.
    orphan_sweep_interval_s: float = pydantic.Field(3600.0, ge=0)
    #: Age after which an object without a row counts as orphaned (an ingest in flight has
    #: written its object but not yet committed its row: keep this well above that gap).
    orphan_max_age_s: float = pydantic.Field(3600.0, gt=0)


class WebSettings(_Section):
    #: Origins besides the host's own that the web page at ``/`` may connect to (its
    #: Content-Security-Policy ``connect-src``), e.g. an S3 endpoint for direct uploads:
    #: ``["https://models.s3.eu-central-1.amazonaws.com"]``.
    connect_src: list[str] = []

    @pydantic.field_validator("connect_src", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """``AECFLOW_WEB__CONNECT_SRC=https://a,https://b`` arrives as one string."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @pydantic.field_validator("connect_src")
    @classmethod
    def _csp_sources(cls, value: list[str]) -> list[str]:
        """Each a CSP source expression: no spaces, quotes, commas or semicolons."""
        for item in value:
            if not item or any(c in item for c in " \t;,'\"") or not item.isprintable():
                raise ValueError(f"{item!r} is not a CSP source (an origin like https://host)")
        return value


class Settings(_Section):
    #: Where each setting read by ``load_settings`` came from: key path -> file or variable.
    _sources: dict[tuple[str, ...], str] = pydantic.PrivateAttr(default_factory=dict)

    data_dir: Path = Path("aecflow-data")
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    processing: ProcessingSettings = ProcessingSettings()
    #: Destinations for events; the embedded default logs them.
    notifiers: list[NotifierSettings] = [NotifierSettings(backend="log")]
    outbox: OutboxSettings = OutboxSettings()
    breakers: BreakerSettings = BreakerSettings()
    uploads: UploadSettings = UploadSettings()
    worker: WorkerSettings = WorkerSettings()
    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    audit: AuditSettings = AuditSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    web: WebSettings = WebSettings()

    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'aecflow.db').as_posix()}"

    def notifier_names(self) -> list[str]:
        """Destination names, unique: ``name`` or the backend, numbered when repeated."""
        names: list[str] = []
        for entry in self.notifiers:
            base = entry.name or entry.backend
            name, n = base, 2
            while name in names:
                name, n = f"{base}-{n}", n + 1
            names.append(name)
        return names

    def source(self, *path: str) -> str:
        """Where the table or key at ``path`` was set, for messages: the file, the variable."""
        found = [src for key, src in self._sources.items() if key[: len(path)] == path]
        return ", ".join(sorted(set(found))) or "the settings"


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read settings from ``path`` (or ``AECFLOW_CONFIG``, else ``./aecflow.toml`` when it
    exists, so a file next to the user is never silently ignored) and the environment."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    source = path or env.get(f"{ENV_PREFIX}CONFIG")
    if not source and Path("aecflow.toml").is_file():
        source = Path("aecflow.toml").resolve()
    if source:
        log.info("settings loaded from %s", source)
        try:
            raw = tomllib.loads(Path(source).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"configuration file {str(source)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"configuration file {str(source)!r} is not valid TOML: {exc}"
            ) from None
        sources = {key: str(source) for key in _leaves(raw)}
    sources |= apply_env_overrides(raw, env)
    _warn_single_underscore(raw, env, sources)
    for unknown in _drop_unknown(Settings, raw, ()):
        log.warning(
            "unknown setting %r in %s: ignored",
            ".".join(unknown),
            ", ".join(sorted({s for k, s in sources.items() if k[: len(unknown)] == unknown})),
        )
    settings = validate(Settings, raw, where="configuration")
    settings._sources = sources
    return settings


def _leaves(node: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(node, dict) and node:
        return [leaf for k, v in node.items() for leaf in _leaves(v, (*path, str(k)))]
    if isinstance(node, list) and node:
        return [leaf for i, v in enumerate(node) for leaf in _leaves(v, (*path, str(i)))]
    return [path]


def _drop_unknown(
    model: type[pydantic.BaseModel], raw: Any, path: tuple[str, ...]
) -> list[tuple[str, ...]]:
    """Remove keys ``model`` does not know from ``raw`` (in place) and return their paths.
    Backend tables are left whole: their plugin's config model validates them."""
    if not isinstance(raw, dict):
        return []
    unknown: list[tuple[str, ...]] = []
    for key in list(raw):
        field = model.model_fields.get(key)
        if field is None:
            del raw[key]
            unknown.append((*path, key))
        elif isinstance(field.annotation, type) and issubclass(field.annotation, _Section):
            unknown += _drop_unknown(field.annotation, raw[key], (*path, key))
    return unknown


def _warn_single_underscore(
    raw: dict[str, Any], environ: Mapping[str, str], sources: dict[tuple[str, ...], str]
) -> None:
    """``AECFLOW_DATA_DIR`` sets the top-level key; ``AECFLOW_STORAGE_ROOT`` is a warning that
    suggests ``AECFLOW_STORAGE__ROOT``. Other names (tokens, secrets by reference) are not ours."""
    tables = {k for k, f in Settings.model_fields.items() if k != "data_dir"}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" in name:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        if rest == "data_dir":
            raw[rest] = value
            sources[(rest,)] = name
            continue
        section = next((t for t in tables if rest.startswith(f"{t}_")), None)
        if section:
            suggestion = f"{ENV_PREFIX}{section.upper()}__{rest[len(section) + 1 :].upper()}"
            log.warning(
                "unknown environment variable %s: ignored (did you mean %s?)", name, suggestion
            )


def apply_env_overrides(
    raw: dict[str, Any], environ: Mapping[str, str]
) -> dict[tuple[str, ...], str]:
    """Merge ``AECFLOW_A__B__C=value`` into ``raw["a"]["b"]["c"]`` in place; return each
    key path set and the variable that set it."""
    sources: dict[tuple[str, ...], str] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            continue
        node: Any = raw
        for part, nxt in itertools.pairwise(path):
            node = _child(node, part, list if nxt.isdigit() else dict, name)
        _set(node, path[-1], value, name)
        sources[tuple(path)] = name
    return sources


def _child(node: Any, key: str, kind: type, var: str) -> Any:
    if isinstance(node, list):
        index = int(key)
        while len(node) <= index:
            node.append({})
        return node[index]
    if not isinstance(node, dict):
        raise ConfigError(f"environment variable {var} overrides a value that is not a table")
    return node.setdefault(key, kind())


def _set(node: Any, key: str, value: str, var: str) -> None:
    if isinstance(node, list) or not isinstance(node, dict):
        raise ConfigError(f"environment variable {var} does not name a setting")
    node[key] = value


def resolve_secrets(value: Any, where: str) -> Any:
    """A copy of ``value`` with each ``{env=...}`` / ``{file=...}`` table replaced by its secret."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            name = value["env"]
            if name not in os.environ:
                raise ConfigError(f"{where}: the secret's environment variable {name!r} is not set")
            return os.environ[name]
        if set(value) == {"file"}:
            try:
                return Path(value["file"]).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(f"{where}: cannot read the secret file: {exc.strerror}") from None
        return {k: resolve_secrets(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


def validate(model: type[ModelT], raw: Any, *, where: str) -> ModelT:
    """Validate ``raw`` with ``model``; errors name ``where`` and the key, never the value."""
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"key {'.'.join(str(p) for p in err['loc']) or '(top)'!r}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigError(f"{where}: {problems}") from None
