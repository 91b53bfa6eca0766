"""Handing a request's socket over to another protocol (WebSocket) inside the WSGI server.

gunicorn puts each request's client socket in ``environ["gunicorn.socket"]``; a view that
has taken it (``simple_websocket.Server`` speaks RFC 6455 on it from a thread of its own)
must keep gunicorn from writing an HTTP response on it afterwards. The way gunicorn's
workers know is an exception: a WSGI application that raises ``StopIteration`` makes the
worker close the connection without a word (gthread's ``handle``: "Closing connection"),
which is what flask-sock and python-engineio do in their gunicorn mode. Django turns
every exception of a view into a 500 response, so the view only marks the request
(``hand_over``) and ``HandOverApplication``, around Django's WSGI application, raises it
once Django has finished the request (signals sent, database connections released).

Other servers (``runserver``, the test client) give no socket: ``socket_of`` says None and
the view refuses the upgrade.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import Any

HANDED_OVER = "imagestore.handed_over"

StartResponse = Callable[..., Any]
WSGIApplication = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def socket_of(environ: dict[str, Any]) -> socket.socket | None:
    sock = environ.get("gunicorn.socket")
    return sock if isinstance(sock, socket.socket) else None


def hand_over(environ: dict[str, Any]) -> None:
    """The connection now belongs to the view: no HTTP response is to be written on it."""
    environ[HANDED_OVER] = True


class HandOverApplication:
    def __init__(self, application: WSGIApplication) -> None:
        self.application = application

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        response = self.application(environ, start_response)
        if environ.get(HANDED_OVER):
            close = getattr(response, "close", None)
            if close is not None:
                close()  # Django's request_finished: connections closed, as after any request
            raise StopIteration  # gunicorn: close the connection, write nothing
        return response
