"""Connections that cannot hold the model server: bounded request headers, and clients that stall cut off.

uvicorn's httptools protocol (what KServe runs) buffers a request's headers whole however large they grow,
and waits for a request's headers and body without limit: 40 connections sending 48 MB of headers each took
a server past its pod's memory limit, and a client that sends half a request and goes silent holds its
connection open forever. `GuardedHttpToolsProtocol` counts each request's header bytes as they arrive and
answers 431 past `MAX_HEADER_BYTES`, before they are buffered further; it answers 408 and closes a
connection whose request headers have not all arrived `HEADER_SECONDS` after their first byte, or whose body
has not `BODY_SECONDS` after its headers. Other connections are served meanwhile (one event loop, no
blocking).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Largest request line plus headers (what browsers and proxies send fits in 8-16 KiB).
MAX_HEADER_BYTES = 64 * 1024
HEADER_SECONDS = 10.0
BODY_SECONDS = 30.0
_END_OF_HEADERS = b"\r\n\r\n"
_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header size limit and header and body read timeouts."""

    max_header_bytes = MAX_HEADER_BYTES
    header_seconds = HEADER_SECONDS
    body_seconds = BODY_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_headers, self._header_bytes, self._tail = True, 0, b""
        self._deadline: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            if self._deadline is None:
                self._arm(self.header_seconds, "headers")
            seen = self._tail + data
            end = seen.find(_END_OF_HEADERS)
            self._header_bytes += (
                len(data) if end < 0 else max(0, end + len(_END_OF_HEADERS) - len(self._tail))
            )
            if self._header_bytes > self.max_header_bytes:
                self._refuse(431, f"request headers are over the limit of {self.max_header_bytes} bytes")
                return
            self._tail = seen[-(len(_END_OF_HEADERS) - 1) :]
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._arm(self.body_seconds, "body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_headers, self._header_bytes, self._tail = True, 0, b""
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self, what: str, seconds: float) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self._refuse(408, f"the request {what} did not arrive within {seconds:g} s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` with `message` as JSON and close the connection (only before a response began)."""
        self._disarm()
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        body = b'{"error": "' + message.encode("ascii") + b'"}'
        head = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])
        head += b"content-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(
            body
        )
        self.transport.write(head + body)
        self.transport.close()
