"""The HTTP API's server: uvicorn on httptools, with the deadlines uvicorn does not have.

uvicorn closes idle keep-alive connections, but a client that opens a connection and sends nothing, half a
request head or half a body holds it forever. Here every request must complete its head within
``header_timeout_s`` of its first byte (or of the connection, for the first request) and its body within
``body_timeout_s`` of the head; otherwise it gets a 408 (head) or is cut (body). ``limit_concurrency``
bounds connections plus running requests: past it, uvicorn answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
HEAD_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
MAX_HEAD = 64 * 1024  # request line plus headers
KEEP_ALIVE_S = 5


class DeadlineHttpProtocol(HttpToolsProtocol):
    """httptools' protocol with a head deadline and a body deadline per request."""

    header_timeout_s = 10.0
    body_timeout_s = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD:  # an endless head would grow our memory until the deadline
                self._reject(HEAD_TOO_LARGE)
                return
        super().data_received(data)

    def _arm(self, seconds: float, on_expiry: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, on_expiry)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm(self.header_timeout_s, self._head_too_slow)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._arm(self.body_timeout_s, self._body_too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()

    def _head_too_slow(self) -> None:
        self._deadline = None
        self._reject(REQUEST_TIMEOUT)

    def _reject(self, response: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()

    def _body_too_slow(self) -> None:
        # The application is already reading the body: cutting the connection ends its read as a disconnect.
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def http_protocol(header_timeout_s: float, body_timeout_s: float) -> type[DeadlineHttpProtocol]:
    return type(
        "ConfiguredHttpProtocol",
        (DeadlineHttpProtocol,),
        {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s},
    )


class EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its signal handlers: the host application owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(
    app: Any,
    *,
    header_timeout_s: float,
    body_timeout_s: float,
    max_connections: int,
    tls: tuple[str, str] | None = None,
) -> EmbeddedUvicorn:
    """``tls``: the PEM certificate chain and private key files, for https."""
    config = uvicorn.Config(
        app,
        http=http_protocol(header_timeout_s, body_timeout_s),
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        limit_concurrency=max_connections or None,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )
    return EmbeddedUvicorn(config)
