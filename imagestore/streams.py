"""Long answers (progress streams, ``logs?follow``, ``wait``) that end when nobody listens.

Under WSGI a streaming generator learns that its client left only when a write fails,
and a silent loop (a pull waiting for a layer, a quiet container, ``wait``) never writes:
each abandoned ``docker pull`` would hold one of the server's threads for as long as the
job runs. So every long loop asks its ``StreamGuard`` whether to go on:

- ``client_gone()``: the client's socket is polled for end-of-file (``select`` and a
  non-consuming ``recv(MSG_PEEK)`` answering ``b""``), as Go's HTTP server does for
  moby's handlers (a background read cancelling the request's context when the client
  closes). Checked at most once a second; where the server gives no socket it says no.
- ``idle()``: no new output for ``STREAM_IDLE_TIMEOUT`` seconds ends a stream that
  produces output (progress, logs); ``wait`` is not bounded by it, waiting is its job.
- ``keepalive_due()``: where the format allows bytes that mean nothing (whitespace
  between JSON values), a silent stream sends one every ``STREAM_KEEPALIVE`` seconds, so
  a proxy does not cut it and a write to a vanished client fails.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from typing import Any

from django.conf import settings

CHECK_INTERVAL = 1.0  # seconds between two socket polls of one stream
# Between JSON values (the progress stream, wait's answer) whitespace is allowed
# (RFC 8259 section 2): Go's json.Decoder (the docker CLI) and the Docker SDK skip it.
# One space rather than a newline, so line-by-line readers only see it before a value.
JSON_KEEPALIVE = b" "


def request_socket(request: Any) -> socket.socket | None:
    """The client's socket: gunicorn names it; Django's development and test servers
    only hold it inside ``wsgi.input`` (LimitedStream -> BufferedReader -> SocketIO)."""
    meta = getattr(request, "META", {})
    sock = meta.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        return sock
    stream: Any = meta.get("wsgi.input")
    for attribute in ("stream", "raw", "_sock"):
        if isinstance(stream, socket.socket):
            break
        stream = getattr(stream, attribute, None)
    return stream if isinstance(stream, socket.socket) else None


def socket_closed(sock: socket.socket) -> bool:
    """True when the peer has closed (end-of-file) or reset the connection. Bytes waiting
    (a pipelined request, an unread body) are left where they are and mean "still there"."""
    try:
        if sock.fileno() < 0:
            return True
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        if isinstance(sock, ssl.SSLSocket):  # peek at the TCP stream under TLS
            with socket.fromfd(sock.fileno(), sock.family, sock.type) as raw:
                return raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


class StreamGuard:
    """One long answer's watch over its client and its silence."""

    def __init__(self, request: Any, *, idle_timeout: float | None = None, keepalive: float | None = None) -> None:
        self.socket = request_socket(request)
        self.idle_timeout = settings.STREAM_IDLE_TIMEOUT if idle_timeout is None else idle_timeout
        self.keepalive = settings.STREAM_KEEPALIVE if keepalive is None else keepalive
        now = time.monotonic()
        self._last_output = self._last_write = now
        self._next_check = now + CHECK_INTERVAL
        self._gone = False

    def output(self) -> None:
        """Real output was sent: the idle clock starts again."""
        self._last_output = self._last_write = time.monotonic()

    def wrote(self) -> None:
        """A keep-alive was sent: not output, but the connection is not silent."""
        self._last_write = time.monotonic()

    def client_gone(self) -> bool:
        if self._gone:
            return True
        if self.socket is None:
            return False
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + CHECK_INTERVAL
            self._gone = socket_closed(self.socket)
        return self._gone

    def idle(self) -> bool:
        return self.idle_timeout > 0 and time.monotonic() - self._last_output >= self.idle_timeout

    def keepalive_due(self) -> bool:
        return self.keepalive > 0 and time.monotonic() - self._last_write >= self.keepalive

    def go_on(self) -> bool:
        """For a stream of output: the client is there and the stream is not idle."""
        return not self.client_gone() and not self.idle()

    def listening(self) -> bool:
        """For ``wait``: the client is there (no idle limit)."""
        return not self.client_gone()

