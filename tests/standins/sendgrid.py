"""A SendGrid v3 Mail Send stand-in: a real HTTP server on loopback.

In-process (tests)::

    with SendGridStandin(api_key="k") as standin:
        standin.url, standin.messages(), standin.set_mode(Mode(fail_status=500, count=2))

As a process (benchmarks)::

    python -m tests.standins.sendgrid --port 8025 --delay-ms 50

Control over HTTP: ``GET /_standin/messages``, ``DELETE /_standin/messages``,
``POST /_standin/mode`` with a JSON Mode, ``POST /_standin/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import re
import socket
import threading
import time
import uuid
from collections import deque
from typing import Any

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# SendGrid's documented limits.
MAX_MESSAGE_BYTES = 30 * 1024 * 1024
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
# Enough for any test; benchmarks that send more only keep the latest.
DEFAULT_MAX_RECORDED = 100_000
# A hung request is released after this long so a forgotten hang cannot wedge shutdown.
MAX_HANG_SECONDS = 120.0
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class Mode(msgspec.Struct, kw_only=True):
    """How to answer the next ``count`` requests (all of them while ``count`` is None)."""

    fail_status: int | None = None  # 500, 429, 401, ...
    retry_after: int | None = None  # seconds, sent with a 429
    delay_ms: int = 0
    hang: bool = False
    omit_message_id: bool = False
    count: int | None = None


class Invalid(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _errors(message: str, field: str | None = None, status: int = 400) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "field": field, "help": None}]}, status)


def _require(condition: bool, message: str, field: str) -> None:
    if not condition:
        raise Invalid(message, field)


def _check_address(value: Any, field: str) -> None:
    _require(isinstance(value, dict), "Each address must be an object", field)
    email = value.get("email")
    _require(isinstance(email, str) and bool(_EMAIL.fullmatch(email)), "Invalid email", field)


def validate(body: Any) -> None:
    """Raises Invalid the way SendGrid answers 400; only checks what our client sends."""
    _require(isinstance(body, dict), "Bad Request", "")
    personalizations = body.get("personalizations")
    _require(
        isinstance(personalizations, list) and len(personalizations) > 0,
        "You must have at least one personalization.",
        "personalizations",
    )
    _require(
        len(personalizations) <= MAX_PERSONALIZATIONS,
        "The personalization block is limited to 1000 personalizations per API request.",
        "personalizations",
    )
    recipients = 0
    for i, p in enumerate(personalizations):
        to = p.get("to") if isinstance(p, dict) else None
        _require(
            isinstance(to, list) and len(to) > 0,
            "The to array is required for all personalization objects, and must have at "
            "least one email object with a valid email address.",
            f"personalizations.{i}.to",
        )
        for kind in ("to", "cc", "bcc"):
            for j, address in enumerate(p.get(kind) or []):
                _check_address(address, f"personalizations.{i}.{kind}.{j}.email")
                recipients += 1
    _require(recipients <= MAX_RECIPIENTS, "There is a limit of 1000 total recipients", "")
    _check_address(body.get("from"), "from.email")
    templated = bool(body.get("template_id"))
    if not templated:
        subject_everywhere = all(isinstance(p, dict) and p.get("subject") for p in personalizations)
        _require(
            subject_everywhere or (isinstance(body.get("subject"), str) and body["subject"] != ""),
            "The subject is required.",
            "subject",
        )
        _check_content(body.get("content"))
    _check_attachments(body.get("attachments") or [])
    custom_args = body.get("custom_args") or {}
    _require(
        all(isinstance(v, str) for v in custom_args.values()),
        "Custom args values must be strings.",
        "custom_args",
    )


def _check_content(content: Any) -> None:
    _require(
        isinstance(content, list) and len(content) > 0,
        "Unless a valid template_id is provided, the content parameter is required.",
        "content",
    )
    types: list[str] = []
    for i, item in enumerate(content):
        ok = isinstance(item, dict) and isinstance(item.get("type"), str)
        _require(
            ok and bool(item.get("value")),
            "The content value must be a string at least one character in length.",
            f"content.{i}.value",
        )
        types.append(item["type"])
    if "text/plain" in types and "text/html" in types:
        _require(
            types.index("text/plain") < types.index("text/html"),
            "If present, text/plain must be first, followed by text/html.",
            "content",
        )


def _check_attachments(attachments: list[Any]) -> None:
    for i, a in enumerate(attachments):
        _require(
            isinstance(a, dict) and bool(a.get("filename")),
            "filename required",
            f"attachments.{i}.filename",
        )
        try:
            base64.b64decode(a.get("content") or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Invalid(
                "The attachment content must be base64 encoded.", f"attachments.{i}.content"
            ) from exc
        _require(bool(a.get("content")), "content required", f"attachments.{i}.content")


class SendGridStandin:
    def __init__(
        self,
        api_key: str = "standin-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_recorded: int = DEFAULT_MAX_RECORDED,
        mode: Mode | None = None,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._messages: deque[dict[str, Any]] = deque(maxlen=max_recorded)
        self._mode = mode or Mode()
        # Hung requests wait on this; reset/stop set it from any thread and replace it.
        self._release: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self.requests = 0
        self.app = Starlette(
            routes=[
                Route("/v3/mail/send", self._send, methods=["POST"]),
                Route("/_standin/messages", self._list, methods=["GET", "DELETE"]),
                Route("/_standin/mode", self._set_mode, methods=["POST"]),
                Route("/_standin/reset", self._reset, methods=["POST"]),
            ]
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- Python control (thread-safe) ---------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._messages)

    def set_mode(self, mode: Mode) -> None:
        with self._lock:
            self._mode = mode

    def reset(self) -> None:
        with self._lock:
            self._mode = Mode()
            self._messages.clear()
        self._release_hung()

    def _release_hung(self) -> None:
        with self._lock:
            release, self._release = self._release, None
        if release is not None:
            loop, event = release
            loop.call_soon_threadsafe(event.set)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> SendGridStandin:
        """Serve in a background thread; returns once the port is accepting."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("SendGrid stand-in did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._release_hung()
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def __enter__(self) -> SendGridStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- HTTP -----------------------------------------------------------------------------

    def _take_mode(self) -> tuple[Mode, asyncio.Event]:
        with self._lock:
            self.requests += 1
            mode = self._mode
            if mode.count is not None:
                remaining = mode.count - 1
                self._mode = (
                    Mode() if remaining <= 0 else msgspec.structs.replace(mode, count=remaining)
                )
            if self._release is None:
                self._release = (asyncio.get_running_loop(), asyncio.Event())
            return mode, self._release[1]

    async def _send(self, request: Request) -> Response:
        mode, release = self._take_mode()
        if mode.delay_ms:
            await asyncio.sleep(mode.delay_ms / 1000)
        if mode.hang:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), MAX_HANG_SECONDS)
            return _errors("released from hang", status=503)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _errors(
                "The provided authorization grant is invalid, expired, or revoked", status=401
            )
        if mode.fail_status is not None:
            return self._failure(mode)
        body = await request.body()
        if len(body) > MAX_MESSAGE_BYTES:
            return _errors("Payload Too Large", status=413)
        try:
            payload = msgspec.json.decode(body)
            validate(payload)
        except msgspec.DecodeError:
            return _errors("Bad Request")
        except Invalid as exc:
            return _errors(exc.message, exc.field)
        message_id = uuid.uuid4().hex[:22]
        with self._lock:
            self._messages.append({"message_id": message_id, "received_at": time.time(), **payload})
        headers = {} if mode.omit_message_id else {"X-Message-Id": message_id}
        return Response(status_code=202, headers=headers)

    def _failure(self, mode: Mode) -> Response:
        status = mode.fail_status or 500
        headers: dict[str, str] = {}
        if status == 429 and mode.retry_after is not None:
            headers["Retry-After"] = str(mode.retry_after)
        messages = {
            401: "The provided authorization grant is invalid, expired, or revoked",
            429: "too many requests",
        }
        response = _errors(messages.get(status, "Internal Server Error"), status=status)
        response.headers.update(headers)
        return response

    async def _list(self, request: Request) -> Response:
        if request.method == "DELETE":
            with self._lock:
                self._messages.clear()
            return Response(status_code=204)
        return Response(msgspec.json.encode(self.messages()), media_type="application/json")

    async def _set_mode(self, request: Request) -> Response:
        try:
            mode = msgspec.json.decode(await request.body(), type=Mode)
        except msgspec.DecodeError as exc:
            return _errors(str(exc))
        self.set_mode(mode)
        return Response(msgspec.json.encode(mode), media_type="application/json")

    async def _reset(self, request: Request) -> Response:
        self.reset()
        return Response(status_code=204)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="SendGrid v3 Mail Send stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--api-key", default="standin-key")
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--max-recorded", type=int, default=DEFAULT_MAX_RECORDED)
    args = parser.parse_args(argv)
    standin = SendGridStandin(
        args.api_key, max_recorded=args.max_recorded, mode=Mode(delay_ms=args.delay_ms)
    )
    uvicorn.run(standin.app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
