"""Stream the file part of a ``multipart/form-data`` body without spooling it anywhere.

Starlette's ``request.form()`` writes file parts to temporary files; large models must go
straight to storage instead. This feeds the body to python-multipart's push parser and yields
the first file part's bytes as they arrive. Text fields before the file part are collected
(bounded) for metadata; parts after it are read and ignored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from python_multipart.multipart import MultipartParser, parse_options_header

from aecflow.errors import InvalidInput

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 100


class MultipartFile:
    """The first file part of a multipart body: ``filename``, ``content_type``, then chunks."""

    def __init__(self, body: AsyncIterator[bytes], boundary: bytes) -> None:
        self._body = body
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.content_type: str | None = None
        self._events: list[tuple[str, bytes]] = []
        self._headers: dict[bytes, bytes] = {}
        self._field: bytes = b""
        self._header_field = b""
        self._header_value = b""
        self._part: str | None = None  # "field:<name>", "file", "skip"
        self._file_done = False
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._part_begin,
                    "on_header_field": lambda d, s, e: self._add("_header_field", d[s:e]),
                    "on_header_value": lambda d, s, e: self._add("_header_value", d[s:e]),
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                    "on_part_data": self._part_data,
                    "on_part_end": self._part_end,
                },
            )
        except ValueError as exc:  # a boundary longer than 256 characters, for one
            raise InvalidInput(f"bad multipart boundary: {exc}", code="invalid_multipart") from None

    def _add(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + bytes(data))

    def _part_begin(self) -> None:
        self._headers, self._field = {}, b""

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in params and self.filename is None:
            raw = params[b"filename"]
            self.filename = utf8(raw, "the file part's filename", "invalid_filename")
            ctype = self._headers.get(b"content-type")
            self.content_type = ctype.decode("latin-1") if ctype else None
            self._part = "file"
            self._events.append(("file", b""))
        elif b"filename" not in params and self.filename is None:
            if len(self.fields) >= MAX_FIELDS:
                raise InvalidInput("too many form fields", code="invalid_multipart")
            self._part = f"field:{name}"
        else:
            self._part = "skip"

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == "file":
            self._events.append(("data", bytes(data[start:end])))
        elif self._part and self._part.startswith("field:"):
            self._field += data[start:end]
            if len(self._field) > MAX_FIELD_BYTES:
                raise InvalidInput("a form field is too large", code="invalid_multipart")

    def _part_end(self) -> None:
        if self._part == "file":
            self._events.append(("end", b""))
        elif self._part and self._part.startswith("field:"):
            name = self._part[6:]
            if name.startswith("meta."):  # the only fields that are kept
                self.fields[name] = utf8(self._field, f"form field {name!r}", "invalid_metadata")
            else:
                self.fields[name] = self._field.decode("utf-8", "replace")
        self._part = None

    async def _pump(self) -> bool:
        """Feed the parser one body chunk; ``False`` at the end of the body."""
        try:
            chunk = await anext(self._body)
        except StopAsyncIteration:
            return False
        try:
            self._parser.write(chunk)
        except InvalidInput:
            raise
        except Exception as exc:
            raise InvalidInput(
                f"malformed multipart body: {exc}", code="invalid_multipart"
            ) from None
        return True

    async def start(self) -> None:
        """Read until the file part's headers; raises ``InvalidInput`` if there is none."""
        while not any(kind == "file" for kind, _ in self._events):
            if not await self._pump():
                raise InvalidInput("the multipart body has no file part", code="missing_file_part")
        index = next(i for i, (kind, _) in enumerate(self._events) if kind == "file")
        del self._events[: index + 1]

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file part's bytes, then the rest of the body is drained."""
        while True:
            while self._events:
                kind, data = self._events.pop(0)
                if kind == "end":
                    while await self._pump():  # parts after the file are read and ignored
                        self._events.clear()
                    return
                if data:
                    yield data
            if not await self._pump():
                raise InvalidInput(
                    "the multipart body ended inside the file part", code="invalid_multipart"
                )


def utf8(raw: bytes, what: str, code: str) -> str:
    """Names and metadata in bytes that are not UTF-8 are refused, not kept as U+FFFD."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} is not UTF-8", code=code) from None
