"""A multipart/form-data reader that streams: parts are read as the request body arrives.

Starlette's `request.form()` spools every file to a temporary file before the
handler runs; here each chunk of a file part goes straight to its consumer
(object storage), so memory holds one network chunk and nothing touches disk twice.
python-multipart's callback parser does the parsing; its callbacks only queue events,
and `parts()` turns them back into a pull-based stream.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from base.errors import Invalid, ServiceError

# A plain form field (conversationId...) is short; a long one is a mistake or an attack.
MAX_FIELD_BYTES = 4096
# Room for boundaries, part headers and small fields around the file.
FORM_OVERHEAD_BYTES = 64 * 1024

_Event = tuple[str, object]


class FormTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"


class Part:
    def __init__(self, headers: dict[str, str], events: AsyncIterator[_Event]) -> None:
        self.headers = headers
        _, options = parse_options_header(headers.get("content-disposition", ""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        self.filename = None if raw_filename is None else raw_filename.decode("utf-8", "replace")
        self.content_type = headers.get("content-type")
        self._events = events
        self._done = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """The part's bytes as they arrive."""
        while not self._done:
            try:
                kind, value = await anext(self._events)
            except StopAsyncIteration:
                raise Invalid("the form ended in the middle of a part") from None
            if kind == "data":
                assert isinstance(value, bytes)
                yield value
            elif kind == "end":
                self._done = True

    async def text(self, limit: int = MAX_FIELD_BYTES) -> str:
        data = bytearray()
        async for chunk in self.chunks():
            data += chunk
            if len(data) > limit:
                raise Invalid(f"form field {self.name!r} is longer than {limit} bytes")
        return data.decode("utf-8", "replace")

    async def skip(self) -> None:
        async for _ in self.chunks():
            pass


class FormStream:
    def __init__(self, request: Request, max_bytes: int) -> None:
        content_type, options = parse_options_header(request.headers.get("content-type", ""))
        boundary = options.get(b"boundary")
        if content_type != b"multipart/form-data" or not boundary:
            raise Invalid("the body must be multipart/form-data with a boundary")
        self.request = request
        self.max_bytes = max_bytes
        self._queue: deque[_Event] = deque()
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
                "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
                "on_header_end": self._header_end,
                "on_headers_finished": lambda: self._queue.append(("part", dict(self._headers))),
                # Copied: the parser's buffer is reused for the next chunk.
                "on_part_data": lambda d, s, e: self._queue.append(("data", bytes(d[s:e]))),
                "on_part_end": lambda: self._queue.append(("end", None)),
            },
        )

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_end(self) -> None:
        name = self._field.decode("latin-1").lower()
        # latin-1 keeps the raw bytes; a UTF-8 filename is decoded from them in Part.
        self._headers[name] = self._value.decode("latin-1")
        self._field.clear()
        self._value.clear()

    async def _events(self) -> AsyncIterator[_Event]:
        total = 0
        async for chunk in self.request.stream():
            total += len(chunk)
            if total > self.max_bytes:
                raise FormTooLarge(f"the body is larger than {self.max_bytes} bytes")
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise Invalid(f"the multipart body is malformed: {exc}") from None
            while self._queue:
                yield self._queue.popleft()
        try:
            self._parser.finalize()
        except MultipartParseError as exc:
            raise Invalid(f"the multipart body is malformed: {exc}") from None
        while self._queue:
            yield self._queue.popleft()

    async def parts(self) -> AsyncIterator[Part]:
        """Each part in order; a part the caller did not read is skipped."""
        events = self._events()
        async for kind, value in events:
            if kind != "part":
                continue
            assert isinstance(value, dict)
            part = Part(value, events)
            yield part
            await part.skip()
