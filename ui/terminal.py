"""The browser terminal's WebSocket: ``GET /containers/<ref>/terminal/?mode=exec|attach&rows=&cols=[&logs=1]``.

Served by the same gunicorn as every page: the view checks the request like any other,
then takes the client's socket (imagestore/handover.py) and speaks WebSocket (RFC 6455)
on it with ``simple_websocket``, one gunicorn thread per open terminal.

Who may: a signed-in operator (the session cookie), from a page of this dashboard. A
WebSocket handshake is a GET that browsers send cross-site with the site's cookies and
that no CSRF token protects, so the ``Origin`` header, which browsers always set on it and
pages cannot forge, must name this site (or one of ``CSRF_TRUSTED_ORIGINS``), as
RFC 6455 section 10.2 asks of servers: "cross-site WebSocket hijacking" is refused.
Every refusal is a plain HTTP answer before the upgrade.

The protocol: the server sends the terminal's output as binary messages and, when the
process ends, one text message ``{"exit": CODE}`` before closing (``null``: detached, or
the attached container goes on); the client sends what
is typed as binary messages and ``{"resize": [rows, cols]}`` as text. Closing the socket
(the tab) ends an exec'd process; an attached container goes on running.
"""

from __future__ import annotations

import json
import logging
import select
import threading
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from simple_websocket import ConnectionClosed, Server

from imagestore.errors import USER_ERRORS
from imagestore.handover import hand_over, socket_of
from imagestore.permissions import is_operator
from imagestore.services import containers as container_service
from imagestore.services.containers.console import TerminalSession, open_terminal

# gunicorn's access log never sees a handed-over request: who opened which terminal, how it
# ended and for how long is logged here (an audit line per terminal).
log = logging.getLogger(__name__)
# A dead browser (laptop lid closed) is noticed within a minute: pings every 25 s.
PING_INTERVAL = 25
# Typed input and resize messages are small; a pasted screenful is well under this.
MAX_MESSAGE_SIZE = 1 << 20


def _refuse(status: int, message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def same_origin(request: HttpRequest) -> bool:
    origin = request.headers.get("Origin", "")
    if not origin or origin == "null":
        return False
    try:
        own = f"{request.scheme}://{request.get_host()}"
    except Exception:  # noqa: BLE001 - DisallowedHost: no origin is ours then
        return False
    return origin.lower() == own.lower() or origin in settings.CSRF_TRUSTED_ORIGINS


def _size(request: HttpRequest, name: str, default: int) -> int:
    raw = request.GET.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) <= 1000 else default


def terminal_socket(request: HttpRequest, ref: str) -> HttpResponse:
    if request.method != "GET":
        return _refuse(405, "a terminal is opened with a WebSocket handshake (GET)")
    if not request.user.is_authenticated:
        return _refuse(403, "sign in first")
    if not is_operator(request.user):
        return _refuse(403, "a terminal needs staff or the operators group")
    if not same_origin(request):
        return _refuse(403, "a terminal opens only from this dashboard's own pages (Origin)")
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return _refuse(400, "a WebSocket handshake is expected (Upgrade: websocket)")
    if socket_of(request.META) is None:
        return _refuse(501, "WebSockets are served by gunicorn (make run), not by this server")
    mode = request.GET.get("mode", "exec")
    if mode not in ("exec", "attach"):
        return _refuse(400, "mode is exec or attach")
    try:
        container = container_service.get_container(ref)
        terminal = open_terminal(container, mode, rows=_size(request, "rows", 24), cols=_size(request, "cols", 80),
                                 logs=request.GET.get("logs") == "1")
    except USER_ERRORS as exc:
        return _refuse(getattr(exc, "status", 400) or 400, str(exc))
    # No database connection is held for as long as the terminal stays open.
    close_old_connections()
    from django.db import connections

    connections.close_all()
    try:
        ws = Server.accept(request.META, ping_interval=PING_INTERVAL, max_message_size=MAX_MESSAGE_SIZE)
    except BaseException:
        terminal.close()
        raise
    hand_over(request.META)
    who = request.user.get_username()
    started = time.monotonic()
    log.info("terminal opened: %s by %s on container %s", mode, who, container.id[:12])
    try:
        _pump(ws, terminal)
    finally:
        code = terminal.close()
        log.info("terminal closed: %s by %s on container %s after %.1f s (exit code %s)", mode, who,
                 container.id[:12], time.monotonic() - started, code)
        if ws.connected:
            try:
                ws.close()
            except ConnectionClosed:
                pass
        ws.thread.join(5)  # its reader closes the socket before gunicorn does
    return HttpResponse(status=101)  # never written: the connection was handed over


def _pump(ws: Server, terminal: TerminalSession) -> None:
    """Output to the socket from a thread of its own; input and resizes from it on this one."""
    send_lock = threading.Lock()
    output_done = threading.Event()

    def send(data: Any) -> None:
        with send_lock:
            ws.send(data)

    def copy_output() -> None:
        try:
            while ws.connected:
                readable, _, _ = select.select([terminal], [], [], 1.0)
                if not readable:
                    continue
                chunk = terminal.read()
                if chunk is None:
                    break
                if chunk:
                    send(chunk)
            else:
                return
            # The output ends a moment before the exit code is recorded; a detach (ctrl-p
            # ctrl-q) or an attached container that goes on has none: null.
            deadline = time.monotonic() + 2
            while (code := terminal.exit_code()) is None and time.monotonic() < deadline:
                time.sleep(0.02)
            send(json.dumps({"exit": code}))
            with send_lock:
                ws.close()
        except (ConnectionClosed, OSError):
            pass
        finally:
            output_done.set()

    reader = threading.Thread(target=copy_output, name="terminal-output", daemon=True)
    reader.start()
    try:
        while not output_done.is_set():
            try:
                message = ws.receive(timeout=1.0)
            except ConnectionClosed:
                break
            if message is None:
                if not ws.connected:
                    break
                continue
            if isinstance(message, bytes):
                terminal.write(message)
            else:
                _control(terminal, message)
    except OSError:
        pass  # the process ended while input was on its way
    finally:
        terminal.hang_up()  # the process ends; the reader sees the end of its output
        reader.join(5)


def _control(terminal: TerminalSession, message: str) -> None:
    try:
        data = json.loads(message)
    except ValueError:
        return
    size = data.get("resize") if isinstance(data, dict) else None
    if isinstance(size, list) and len(size) == 2 and all(isinstance(n, int) for n in size):
        terminal.resize(size[0], size[1])
