"""A Python client for the aecflow HTTP API; the engine of ``aecflow upload``.

Why a client at all: a large file should not travel as one fragile request. Files below
``stream_threshold`` go as one streamed request with their ``Content-SHA256``. Larger files go
through an *upload session* (docs/uploads.md): cut into parts that are sent in parallel, each
retried on its own (connection errors, 5xx, 429; exponential backoff with jitter). A session
survives a crash of the client: the next ``upload`` of the same file finds it on the server by
the file's SHA-256, name and size and sends only the parts that are missing, so nothing has to
be remembered on the client's side. Memory stays at about one 1 MiB chunk per request in
flight, whatever the file's size. The server's record is checked against the SHA-256 computed
here, so a file is never reported uploaded unless the server holds exactly its bytes.

    async with AsyncClient("http://127.0.0.1:8000", token) as client:
        record = await client.upload("model.ifc", "tower-a", {"phase": "design"})
        record = await client.wait(record["id"])

:class:`Client` is the same API for synchronous code.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import pydantic
import stamina

from aecflow import schemas, validation
from aecflow.parts import (
    Digests,
    MiB,
    choose_part_size,
    file_chunks,
    hash_file,
    part_ranges,
)

__all__ = ["AsyncClient", "ChecksumMismatch", "Client", "ClientError", "Progress"]

log = logging.getLogger("aecflow.client")
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
#: ``complete`` may verify the whole file's SHA-256 on the server first.
COMPLETE_TIMEOUT = httpx.Timeout(600.0, connect=10.0)
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: What makes an open session one of this upload: the same file, cut and described the same way.
_IDENTITY = ("sha256", "filename", "size", "part_size", "status", "metadata", "content_type")


class ClientError(Exception):
    """The server refused a call (``status``, ``code``, ``message`` from its error JSON), or could
    not be reached (``status`` None)."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    @classmethod
    def from_response(cls, response: httpx.Response) -> ClientError:
        try:
            error = schemas.Error.model_validate_json(response.content).error
            code, message = error.code, error.message
        except pydantic.ValidationError:  # not aecflow's JSON (e.g. S3's XML)
            code = f"http_{response.status_code}"
            message = f"{response.status_code} {response.reason_phrase}: {response.text[:300]}"
        kind = ChecksumMismatch if code == "checksum_mismatch" else ClientError
        return kind(message, status=response.status_code, code=code)


class ChecksumMismatch(ClientError):
    """The bytes the server holds are not the bytes of the local file."""


@dataclass(frozen=True, slots=True)
class Progress:
    """One upload's state, passed to the ``progress`` callback (on the event loop's thread).

    ``sent`` counts bytes the server acknowledged, including parts already there when an upload
    resumes (a streamed upload counts bytes handed to the connection). ``hashed`` counts bytes
    read by the hashing pass. ``phase``: hashing, uploading, completing, done. A resumed upload
    has ``resumed_parts`` of its ``parts`` on the server from the start.
    """

    filename: str
    total: int
    sent: int
    phase: str
    hashed: int = 0
    #: Parts of a session upload (0: streamed) and how many were on the server already.
    parts: int = 0
    resumed_parts: int = 0


class _Reporter:
    """Builds :class:`Progress` values and hands them to the callback."""

    def __init__(self, callback: Callable[[Progress], Any] | None, filename: str, total: int):
        self.callback = callback
        self.state = Progress(filename, total, 0, "hashing")

    def update(self, **changes: Any) -> None:
        self.state = replace(self.state, **changes)
        if self.callback:
            self.callback(self.state)

    def hashed(self, count: int) -> None:
        if self.state.phase == "hashing":
            self.update(hashed=self.state.hashed + count)

    def sent(self, count: int) -> None:
        self.update(sent=self.state.sent + count)


class _Retry(Exception):
    """A response worth another attempt: 5xx or 429."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _retry_hook(idempotent: bool) -> Callable[[Exception], bool | float]:
    """Which failures stamina retries; a non-idempotent call only when nothing was done."""

    def hook(exc: Exception) -> bool | float:
        if isinstance(exc, _Retry):
            status = exc.response.status_code
            if not idempotent and status not in (429, 503):
                return False
            after = exc.response.headers.get("retry-after", "")
            return min(max(float(after), 0.1), 30.0) if after.isdigit() else True
        if isinstance(exc, httpx.UnsupportedProtocol):
            return False
        if not idempotent:
            return isinstance(exc, httpx.ConnectError)
        return isinstance(exc, httpx.TransportError)

    return hook


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


class _OriginBearer(httpx.Auth):
    """The bearer token, only for URLs on the aecflow server (never for presigned S3 URLs)."""

    def __init__(self, token: str | None, base: httpx.URL) -> None:
        self.token = token
        self.origin = _origin(base)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.token and _origin(request.url) == self.origin:
            request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def _path(*segments: str) -> str:
    return "/v1/" + "/".join(urllib.parse.quote(s, safe="") for s in segments)


class AsyncClient:
    """The aecflow API over HTTP: upload (streamed or resumable), status, wait."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        part_concurrency: int = 4,
        stream_threshold: int = 64 * MiB,
        part_size: int | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        attempts: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``attempts``: tries per request before giving up; ``transport``: for tests/proxies."""
        if part_concurrency < 1:
            raise ValueError("part_concurrency must be at least 1")
        if part_size is not None:
            choose_part_size(0, part_size)  # refuse a bad size now, not mid-upload
        self.base_url = base_url.rstrip("/")
        self.part_concurrency = part_concurrency
        self.stream_threshold = stream_threshold
        self.part_size = part_size
        self.attempts = attempts
        self._base = httpx.URL(self.base_url + "/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=_OriginBearer(token, self._base),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "aecflow-client"},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def status(self, file_id: str) -> dict[str, Any]:
        """The file's record."""
        return (await self._call("GET", _path("files", file_id))).json()

    async def wait(
        self,
        file_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a polling deadline, as in Client.wait
        poll: float = 0.5,
    ) -> dict[str, Any]:
        """Poll until the file's processing has an outcome; ``TimeoutError`` after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = await self.status(file_id)
            steps = (record.get("steps") or {}).values()
            if record["processing"]["outcome"] is not None and all(
                step.get("outcome") is not None for step in steps
            ):
                return record
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"processing of {file_id} not finished after {timeout:g} s")
            await asyncio.sleep(poll)

    async def reprocess(self, file_id: str, step: str | None = None) -> dict[str, Any]:
        """Queue the file's processing again (with ``step``: only that step)."""
        params = {"step": step} if step else {}
        url = _path("files", file_id, "reprocess")
        return (await self._call("POST", url, params=params)).json()

    async def artifacts(self, file_id: str) -> list[dict[str, Any]]:
        """The artifacts the file's steps wrote (name, step, media_type, size, sha256)."""
        return (await self._call("GET", _path("files", file_id, "artifacts"))).json()["items"]

    async def download_artifact(
        self, file_id: str, name: str, path: str | PathLike[str]
    ) -> dict[str, Any]:
        """Stream artifact ``name`` to ``path`` and check its SHA-256; returns its row."""
        wanted = next((a for a in await self.artifacts(file_id) if a["name"] == name), None)
        if wanted is None:
            raise ClientError(
                f"file {file_id!r} has no artifact {name!r}", status=404, code="artifact_not_found"
            )
        target = Path(path)
        partial = target.with_name(target.name + ".partial")
        digest = hashlib.sha256()
        url = _path("files", file_id, "artifacts", name, "content")
        async with self._http.stream("GET", url) as response:
            if response.is_error:
                await response.aread()
                raise ClientError.from_response(response)
            with partial.open("wb") as handle:
                async for chunk in response.aiter_bytes():
                    digest.update(chunk)
                    handle.write(chunk)
        if digest.hexdigest() != wanted["sha256"]:
            partial.unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"artifact {name!r} arrived with SHA-256 {digest.hexdigest()}, "
                f"the server lists {wanted['sha256']}",
                code="checksum_mismatch",
            )
        partial.replace(target)
        return wanted

    async def pipeline(self, project: str) -> dict[str, Any]:
        """The project's pipeline and where it comes from."""
        return (await self._call("GET", _path("projects", project, "pipeline"))).json()

    async def set_pipeline(self, project: str, pipeline: list[str] | None) -> dict[str, Any]:
        """Set the project's pipeline (admins); ``None`` removes the API's override."""
        url = _path("projects", project, "pipeline")
        if pipeline is None:
            return (await self._call("DELETE", url)).json()
        return (await self._call("PUT", url, json={"pipeline": pipeline})).json()

    async def upload_session(self, upload_id: str) -> dict[str, Any]:
        """An upload session: its parts, what arrived, fresh URLs for the rest."""
        return (await self._call("GET", _path("uploads", upload_id))).json()

    async def upload(
        self,
        path: str | PathLike[str],
        project: str,
        metadata: Mapping[str, str] | None = None,
        *,
        content_type: str | None = None,
        filename: str | None = None,
        resume: bool = True,
        progress: Callable[[Progress], Any] | None = None,
    ) -> dict[str, Any]:
        """Upload a file to ``project``; returns its record once the server holds it.

        ``resume``: continue an open session of the same file (same SHA-256, name and size)
        instead of starting over.
        """
        path = Path(path)
        name = filename or path.name
        meta = dict(metadata or {})
        # What cannot be encoded cannot be sent: refused here, before any request, as the
        # server would (the rest of the name and metadata rules are the server's to apply).
        validation.encodable(name, "filename", "invalid_filename")
        for key, value in meta.items():
            validation.encodable(key, "metadata key", "invalid_metadata")
            validation.encodable(value, f"metadata value for {key!r}", "invalid_metadata")
        size = (await asyncio.to_thread(path.stat)).st_size
        report = _Reporter(progress, name, size)
        if size < self.stream_threshold or size == 0:
            record = await self._stream(path, project, name, meta, content_type, report)
        else:
            record = await self._session(path, project, name, meta, content_type, resume, report)
        report.update(phase="done", sent=report.state.total)
        return record

    async def _hash(self, path: Path, part_size: int | None, report: _Reporter) -> Digests:
        loop = asyncio.get_running_loop()

        def on_bytes(count: int) -> None:
            loop.call_soon_threadsafe(report.hashed, count)

        report.update(phase="hashing")
        digests = await asyncio.to_thread(hash_file, path, part_size, on_bytes)
        report.update(total=digests.size)
        return digests

    async def _stream(
        self,
        path: Path,
        project: str,
        name: str,
        meta: dict[str, str],
        content_type: str | None,
        report: _Reporter,
    ) -> dict[str, Any]:
        digests = await self._hash(path, None, report)
        headers = {"Content-SHA256": digests.sha256, "Content-Length": str(digests.size)}
        if content_type:
            headers["Content-Type"] = content_type

        def body() -> AsyncIterator[bytes]:  # a fresh one for every attempt
            report.update(phase="uploading", sent=0)
            return file_chunks(path, 0, digests.size, report.sent)

        response = await self._call(
            "POST",
            _path("projects", project, "files"),
            params={"filename": name} | {f"meta.{k}": v for k, v in meta.items()},
            headers=headers,
            body=body,
            idempotent=False,
        )
        return _checked(response.json(), digests)

    async def _session(
        self,
        path: Path,
        project: str,
        name: str,
        meta: dict[str, str],
        content_type: str | None,
        resume: bool,
        report: _Reporter,
    ) -> dict[str, Any]:
        part_size = choose_part_size(report.state.total, self.part_size)
        digests = await self._hash(path, part_size, report)
        session = None
        if resume:
            wanted = (digests.sha256, name, digests.size, part_size, "open", meta, content_type)
            session = await self._find_session(project, wanted)
        if session is None:
            opening = schemas.NewUploadSession(
                filename=name,
                size=digests.size,
                sha256=digests.sha256,
                part_size=part_size,
                part_sha256=digests.part_sha256,
                content_type=content_type or None,
                metadata=meta,
            ).model_dump(exclude_none=True)
            session = (
                await self._call(
                    "POST", _path("projects", project, "uploads"), json=opening, idempotent=False
                )
            ).json()
        ranges = part_ranges(digests.size, part_size)
        if session["part_size"] != part_size or session["part_count"] != len(ranges):
            raise ClientError(
                f"the server cut {name} into {session['part_count']} parts of "
                f"{session['part_size']} bytes, expected {len(ranges)} of {part_size}",
                code="unexpected_session",
            )
        missing = [part for part in session["parts"] if not part["received"]]
        waiting = sum(ranges[part["number"] - 1][1] for part in missing)
        resumed = len(ranges) - len(missing)
        if resumed:
            log.info(
                "resuming upload session %s of %s: %d of %d parts already on the server",
                session["id"],
                name,
                resumed,
                len(ranges),
            )
        report.update(
            phase="uploading", sent=digests.size - waiting, parts=len(ranges), resumed_parts=resumed
        )
        await self._send_parts(session, path, digests, ranges, missing, report)
        report.update(phase="completing")
        response = await self._call(
            "POST", _path("uploads", session["id"], "complete"), timeout=COMPLETE_TIMEOUT
        )
        return _checked(response.json(), digests)

    async def _find_session(self, project: str, wanted: tuple[Any, ...]) -> dict[str, Any] | None:
        """An open session whose ``_IDENTITY`` fields equal ``wanted``, or None."""
        query = dict(zip(("sha256", "filename", "size"), wanted, strict=False))
        listing = await self._call("GET", _path("projects", project, "uploads"), params=query)
        for item in listing.json()["items"]:
            if tuple(item.get(key) for key in _IDENTITY) != wanted:
                continue
            try:
                session = await self.upload_session(item["id"])
            except ClientError as exc:
                if exc.status in (404, 409, 410):  # gone, aborted or expired meanwhile
                    continue
                raise
            if session["status"] == "open":
                return session
        return None

    async def _send_parts(
        self,
        session: dict[str, Any],
        path: Path,
        digests: Digests,
        ranges: list[tuple[int, int]],
        missing: list[dict[str, Any]],
        report: _Reporter,
    ) -> None:
        queue = iter(missing)

        async def worker() -> None:
            for part in queue:  # shared: each part is taken by exactly one worker
                await self._send_part(session["id"], part, path, digests, ranges)
                report.sent(ranges[part["number"] - 1][1])

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.part_concurrency, len(missing))):
                    group.create_task(worker())
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None

    async def _send_part(
        self,
        upload_id: str,
        part: dict[str, Any],
        path: Path,
        digests: Digests,
        ranges: list[tuple[int, int]],
    ) -> None:
        number = part["number"]
        offset, length = ranges[number - 1]
        refreshed = False
        while True:
            url = self._base.join(part["url"])
            on_host = _origin(url) == _origin(self._base)
            headers = httpx.Headers(part.get("headers") or {})
            headers["Content-Length"] = str(length)
            if on_host and "content-sha256" not in headers:
                headers["Content-SHA256"] = digests.part_sha256[number - 1]
            try:
                await self._call(
                    part.get("method", "PUT"),
                    url,
                    headers=headers,
                    body=lambda: file_chunks(path, offset, length),
                )
                return
            except ClientError as exc:
                if on_host or refreshed or exc.status != 403:
                    raise
            # a presigned URL that expired: the session hands out fresh ones
            refreshed = True
            fresh = await self.upload_session(upload_id)
            part = next(p for p in fresh["parts"] if p["number"] == number)
            if part["received"]:
                return

    async def _call(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        body: Callable[[], AsyncIterator[bytes]] | None = None,
        idempotent: bool = True,
        **options: Any,
    ) -> httpx.Response:
        """One request, retried on connection errors, 5xx and 429; errors as ClientError."""
        retries = stamina.retry_context(
            on=_retry_hook(idempotent),
            attempts=self.attempts,
            timeout=None,
            wait_initial=0.25,
            wait_max=15.0,
        )
        try:
            async for attempt in retries:
                with attempt:
                    if body is not None:
                        options["content"] = body()
                    response = await self._http.request(method, url, **options)
                    if response.status_code == 429 or response.status_code >= 500:
                        raise _Retry(response)
        except _Retry as exc:
            raise ClientError.from_response(exc.response) from None
        except httpx.TransportError as exc:
            target = self._base.join(url)
            where = (
                f"aecflow at {self.base_url}"
                if _origin(target) == _origin(self._base)
                else f"{target.scheme}://{target.host}"
            )
            raise ClientError(f"cannot reach {where}: {_reason(exc)}", code="unreachable") from exc
        if response.is_error:
            raise ClientError.from_response(response)
        return response


def _reason(exc: BaseException) -> str:
    """The innermost OS error's words ("Connection refused"), else httpx's."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and (cause.errno or cause.strerror):
            return os.strerror(cause.errno) if cause.errno else str(cause.strerror)
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def _checked(record: dict[str, Any], digests: Digests) -> dict[str, Any]:
    if record.get("sha256") != digests.sha256:
        raise ChecksumMismatch(
            f"the server holds {record.get('sha256')} for {record.get('filename')}, "
            f"the local file is {digests.sha256}",
            code="checksum_mismatch",
        )
    return record


class Client:
    """:class:`AsyncClient` for synchronous code, on a private event loop."""

    def __init__(self, base_url: str, token: str | None = None, **options: Any) -> None:
        """Takes the keyword options of :class:`AsyncClient`."""
        self._runner = asyncio.Runner()
        self._client = AsyncClient(base_url, token, **options)
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._runner.run(self._client.aclose())
            self._runner.close()

    def upload(
        self,
        path: str | PathLike[str],
        project: str,
        metadata: Mapping[str, str] | None = None,
        *,
        content_type: str | None = None,
        filename: str | None = None,
        resume: bool = True,
        progress: Callable[[Progress], Any] | None = None,
    ) -> dict[str, Any]:
        """See :meth:`AsyncClient.upload`; ``progress`` is called on this thread."""
        return self._runner.run(
            self._client.upload(
                path,
                project,
                metadata,
                content_type=content_type,
                filename=filename,
                resume=resume,
                progress=progress,
            )
        )

    def status(self, file_id: str) -> dict[str, Any]:
        """The file's record."""
        return self._runner.run(self._client.status(file_id))

    def wait(
        self, file_id: str, *, timeout: float | None = None, poll: float = 0.5
    ) -> dict[str, Any]:
        """Poll until the file's processing has an outcome; ``TimeoutError`` after ``timeout``."""
        return self._runner.run(self._client.wait(file_id, timeout=timeout, poll=poll))

    def upload_session(self, upload_id: str) -> dict[str, Any]:
        """An upload session: its parts, what arrived, fresh URLs for the rest."""
        return self._runner.run(self._client.upload_session(upload_id))

    def reprocess(self, file_id: str, step: str | None = None) -> dict[str, Any]:
        """See :meth:`AsyncClient.reprocess`."""
        return self._runner.run(self._client.reprocess(file_id, step))

    def artifacts(self, file_id: str) -> list[dict[str, Any]]:
        """See :meth:`AsyncClient.artifacts`."""
        return self._runner.run(self._client.artifacts(file_id))

    def download_artifact(
        self, file_id: str, name: str, path: str | PathLike[str]
    ) -> dict[str, Any]:
        """See :meth:`AsyncClient.download_artifact`."""
        return self._runner.run(self._client.download_artifact(file_id, name, path))

    def pipeline(self, project: str) -> dict[str, Any]:
        """See :meth:`AsyncClient.pipeline`."""
        return self._runner.run(self._client.pipeline(project))

    def set_pipeline(self, project: str, pipeline: list[str] | None) -> dict[str, Any]:
        """See :meth:`AsyncClient.set_pipeline`."""
        return self._runner.run(self._client.set_pipeline(project, pipeline))
