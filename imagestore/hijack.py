"""Taking an HTTP connection over from the WSGI server, for Docker's ``Upgrade: tcp`` (attach,
exec) and WebSockets: socket hand-over in gunicorn.

Why this design: the Docker API is served by gunicorn's gthread workers (one thread per
connection, scripts/gunicorn.conf.py), which name the client's socket in
``environ["gunicorn.socket"]``. A view that upgrades writes its own ``101`` answer on that
socket, then relays bytes until the session ends, holding its thread as a long download
would. What gunicorn must then not do is write a response of its own: the view marks the
request (``hijack``, through imagestore/handover.py shared with the browser terminal's
WebSocket) and ``dashboard.wsgi`` raises ``StopIteration`` out of the WSGI call,
which gunicorn (workers/gthread.py ``handle``) takes as "close this connection" and writes
nothing (flask-sock and simple-websocket end a WebSocket under gunicorn the same way). No
second server, no ASGI stack, the same auth and URL routes as every other Docker endpoint.
Under a server that gives no socket (Django's test client) a hijacking view answers 501.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from .errors import ServiceError
from .handover import hand_over, socket_of


class NotHijackable(ServiceError):
    status = 501


def hijack(request: Any) -> socket.socket:
    """The client's socket, now the caller's: the server will write nothing more on it and
    closes it when the view returns."""
    sock = socket_of(request.META)
    if sock is None:
        raise NotHijackable("this server cannot hand the connection over (run it under gunicorn)")
    hand_over(request.META)
    sock.settimeout(None)
    return sock


def response_head(status: str, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
