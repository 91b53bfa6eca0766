"""Taking an HTTP connection over from the WSGI server, for Docker's ``Upgrade: tcp`` (attach,
exec) and WebSockets: socket hand-over in gunicorn.

Why this design: the Docker API is served by gunicorn's gthread workers (one thread per
connection, scripts/gunicorn.conf.py), which name the client's socket in
``environ["gunicorn.socket"]``. A view that upgrades writes its own ``101`` answer on that
socket, then relays bytes until the session ends, holding its thread as a long download
would. What gunicorn must then not do is write a response of its own: the view marks the
request (``hijack``) and ``dashboard.wsgi`` raises ``StopIteration`` out of the WSGI call,
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

HIJACKED = "imagestore.hijacked"


class NotHijackable(ServiceError):
    status = 501


def hijack(request: Any) -> socket.socket:
    """The client's socket, now the caller's: the server will write nothing more on it and
    closes it when the view returns."""
    environ = request.META
    sock = environ.get("gunicorn.socket")
    if not isinstance(sock, socket.socket):
        raise NotHijackable("this server cannot hand the connection over (run it under gunicorn)")
    environ[HIJACKED] = True
    sock.settimeout(None)
    return sock


def response_head(status: str, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def wsgi_hand_over(application: Any) -> Any:
    """Wrap a WSGI application: a hijacked request ends its connection without a response."""

    def handler(environ: dict[str, Any], start_response: Any) -> Any:
        result = application(environ, start_response)
        if environ.get(HIJACKED):
            close = getattr(result, "close", None)
            if close is not None:
                close()
            raise StopIteration("connection hijacked")  # gunicorn: close it, write nothing
        return result

    return handler
