"""Engine API handlers for interactive use: attach, exec, resize, rename, top.

Attach and exec start answer Docker's HTTP/1.1 upgrade (``Connection: Upgrade``,
``Upgrade: tcp``, answered ``101 UPGRADED``) and then carry the raw stream on the same
connection, taken over from gunicorn (imagestore/hijack.py): the process's output as
Docker's multiplexed frames, or raw bytes with a terminal; the client's bytes are its stdin,
and the client half-closing its side (``CloseWrite``, as the CLI does at the end of its
input) is the end of that stdin. See
https://docs.docker.com/reference/api/engine/version/v1.47/#tag/Container/operation/ContainerAttach
"""

from __future__ import annotations

import json
import select
import socket
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from ..errors import BadRequest, Conflict
from ..hijack import hijack, response_head
from ..querystring import flag
from ..services import containers as container_service
from ..services.containers import exec as exec_service
from ..services.containers.attach import Attachment, attach, parse_detach_keys, resize
from ..supervisor import STDERR, frame
from .base import API_VERSION, docker_view
from .views import _container, _json_body, _string


class _Unframe:
    """Docker's multiplexed frames to the bytes they carry (a terminal's stream is raw)."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> bytes:
        self.buffer += data
        out = bytearray()
        while len(self.buffer) >= 8:
            size = int.from_bytes(self.buffer[4:8], "big")
            if len(self.buffer) < 8 + size:
                break
            out += self.buffer[8:8 + size]
            self.buffer = self.buffer[8 + size:]
        return bytes(out)


def _upgrade(request: HttpRequest, *, tty: bool) -> socket.socket:
    """Take the connection over and answer the upgrade (or, to a client that asked for none,
    a plain 200 whose body is the stream until the connection closes, as moby does)."""
    client = hijack(request)
    content_type = "application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream"
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
    head = [("Content-Type", content_type), ("Api-Version", API_VERSION)]
    if upgrade:
        client.sendall(response_head("101 UPGRADED", [*head, ("Connection", "Upgrade"), ("Upgrade", "tcp")]))
    else:
        client.sendall(response_head("200 OK", [*head, ("Connection", "close")]))
    return client


def _relay(client: socket.socket, stream: Attachment, *, tty: bool, stdin: bool) -> None:
    """Bytes both ways until the process's output ends (or the client has gone)."""
    unframe = _Unframe() if tty else None
    reading_client = True
    try:
        while True:
            watched: list[Any] = [stream, client] if reading_client else [stream]
            ready, _, _ = select.select(watched, [], [], 5.0)
            if stream in ready:
                data = stream.recv_raw()
                if not data:
                    return
                out = unframe.feed(data) if unframe is not None else data
                if out:
                    client.sendall(out)
            if client in ready:
                try:
                    data = client.recv(65536)
                except OSError:
                    data = b""
                if data:
                    if stdin:
                        stream.send(data)
                    continue
                # Its half-close: the end of its stdin; the output still goes to it (the CLI
                # half-closes at once when it sends no stdin).
                reading_client = False
                if stdin:
                    stream.close_stdin()
    except OSError:
        return  # the client has gone
    finally:
        stream.close()
        try:
            client.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _hijacked_response() -> HttpResponse:
    return HttpResponse(status=200)  # never written: the WSGI wrapper ends the connection


@docker_view(("POST",))
def container_attach(request: HttpRequest, ref: str) -> HttpResponse:
    """``POST /containers/{id}/attach``: before the start (``docker run``, ``start -a``) it
    waits for the start; ``logs=1`` replays the log first."""
    container = _container(ref)
    detach_keys = request.GET.get("detachKeys") or None
    tty = bool(container.config.get("Tty"))
    if detach_keys:
        parse_detach_keys(detach_keys)  # 400 before the upgrade
    stdin, stdout, stderr = (flag(request, key) for key in ("stdin", "stdout", "stderr"))
    logs, stream_on = flag(request, "logs"), flag(request, "stream")
    client = _upgrade(request, tty=tty)
    if not stream_on:  # the logs only
        unframe = _Unframe() if tty else None
        wanted = {n for n, on in ((1, stdout), (2, stderr)) if on}
        if logs:
            for kind, data in container_service.container_log_frames(container):
                if kind in wanted:
                    client.sendall(data if unframe else frame(kind, data))
        return _hijacked_response()
    # No client-gone check while waiting for the start: a client sending no stdin half-closes
    # at once (the CLI does), which reads the same as gone; the wait is bounded instead.
    try:
        stream = attach(container, stdin=stdin, stdout=stdout, stderr=stderr, logs=logs, detach_keys=detach_keys,
                        timeout=settings.STREAM_IDLE_TIMEOUT or None)
    except Exception as exc:  # after the 101 the only way to say it is on the stream
        client.sendall(frame(STDERR, f"{exc}\n".encode()) if not tty else f"{exc}\r\n".encode())
        return _hijacked_response()
    connections.close_all()  # a session may last hours: it holds no database connection meanwhile
    _relay(client, stream, tty=tty, stdin=stdin)
    return _hijacked_response()


@docker_view(("GET",))
def container_attach_ws(request: HttpRequest, ref: str) -> HttpResponse:
    """``GET /containers/{id}/attach/ws``: the same attach over a WebSocket (RFC 6455, the
    handshake and frames by simple-websocket on the handed-over socket). Each message from the
    client is stdin; the output goes as binary messages, stdout and stderr unframed, as moby's."""
    import simple_websocket

    container = _container(ref)
    detach_keys = request.GET.get("detachKeys") or None
    if detach_keys:
        parse_detach_keys(detach_keys)
    stdin, stdout, stderr = (flag(request, key) for key in ("stdin", "stdout", "stderr"))
    hijack(request)
    # Pings notice a client whose network went away; a message is stdin, never megabytes.
    ws = simple_websocket.Server(request.META, ping_interval=25, max_message_size=1 << 20)
    try:
        stream = attach(container, stdin=stdin, stdout=stdout, stderr=stderr, logs=flag(request, "logs"),
                        detach_keys=detach_keys, timeout=settings.STREAM_IDLE_TIMEOUT or None)
    except Exception as exc:  # after the handshake the only way to say it is the close frame
        ws.close(1011, str(exc)[:120])
        return _hijacked_response()
    connections.close_all()
    try:
        while ws.connected:
            ready, _, _ = select.select([stream], [], [], 0.05)
            if ready:
                frames = stream.read()
                if frames is None:
                    break
                for _, data in frames:
                    ws.send(data)
            while ws.connected:
                message = ws.receive(timeout=0)
                if message is None:
                    break
                if stdin:
                    stream.send(message.encode() if isinstance(message, str) else message)
    except (simple_websocket.ConnectionClosed, OSError):
        pass
    finally:
        stream.close()
        try:
            ws.close()
        except simple_websocket.ConnectionClosed:
            pass
    return _hijacked_response()


def _size(request: HttpRequest) -> tuple[int, int]:
    try:
        height, width = int(request.GET.get("h", "")), int(request.GET.get("w", ""))
    except ValueError:
        raise BadRequest("h and w must be numbers") from None
    return height, width


@docker_view(("POST",))
def container_resize(request: HttpRequest, ref: str) -> HttpResponse:
    resize(_container(ref), *_size(request))
    return HttpResponse(status=200)


@docker_view(("POST",))
def container_rename(request: HttpRequest, ref: str) -> HttpResponse:
    container_service.rename_container(_container(ref), request.GET.get("name", ""))
    return HttpResponse(status=204)


@docker_view(("GET",))
def container_top(request: HttpRequest, ref: str) -> JsonResponse:
    """``docker top``: the container's processes as ``runc ps`` lists them, read from /proc."""
    container = _container(ref)
    if container.state not in container_service.RUNNING_STATES:
        raise Conflict(f"Container {container.id} is not running")
    result = container_service._runc(container, "ps", "--format", "json", container.id)
    pids = json.loads(result.stdout or "[]") if result.returncode == 0 else []
    rows = []
    for pid in pids or []:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        rows.append([fields.get("Uid", "").split()[0] if fields.get("Uid") else "", str(pid),
                     fields.get("PPid", "").strip(), cmdline.strip()])
    return JsonResponse({"Titles": ["UID", "PID", "PPID", "CMD"], "Processes": rows})


def _console_size(value: Any) -> list[int] | None:
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 16 for v in value)):
        raise BadRequest("ConsoleSize must be [height, width]")
    return value if any(value) else None


@docker_view(("POST",))
def container_exec_create(request: HttpRequest, ref: str) -> JsonResponse:
    body = _json_body(request)
    instance = exec_service.create_exec(
        _container(ref), body.get("Cmd"), tty=bool(body.get("Tty")), stdin=bool(body.get("AttachStdin")),
        stdout=bool(body.get("AttachStdout", True)), stderr=bool(body.get("AttachStderr", True)),
        env=body.get("Env"), user=_string(body, "User"), workdir=_string(body, "WorkingDir"),
        detach_keys=_string(body, "DetachKeys") or None, console_size=_console_size(body.get("ConsoleSize")),
    )
    return JsonResponse({"Id": instance.id}, status=201)


@docker_view(("POST",))
def exec_start(request: HttpRequest, exec_id: str) -> HttpResponse:
    """``POST /exec/{id}/start``: detached (200, empty), or attached through the upgrade."""
    instance = exec_service.get_exec(exec_id)
    body = _json_body(request)
    size = _console_size(body.get("ConsoleSize"))
    if body.get("Detach"):
        exec_service.start_exec(instance, console_size=size)
        return HttpResponse(status=200)
    if instance.state() != "created":
        raise Conflict(f"Error: Exec command {instance.id} is already running")
    config = instance.config
    client = _upgrade(request, tty=instance.tty)
    try:
        exec_service.start_exec(instance, console_size=size)
    except Exception as exc:  # after the 101 the only way to say it is on the stream
        client.sendall(frame(STDERR, f"{exc}\n".encode()) if not instance.tty else f"{exc}\r\n".encode())
        return _hijacked_response()
    stream = exec_service.attach_exec(instance, stdin=bool(config.get("AttachStdin")),
                                      stdout=bool(config.get("AttachStdout")),
                                      stderr=bool(config.get("AttachStderr")))
    connections.close_all()
    _relay(client, stream, tty=instance.tty, stdin=bool(config.get("AttachStdin")))
    return _hijacked_response()


@docker_view(("POST",))
def exec_resize(request: HttpRequest, exec_id: str) -> HttpResponse:
    exec_service.resize_exec(exec_service.get_exec(exec_id), *_size(request))
    return HttpResponse(status=200)


@docker_view(("GET",))
def exec_inspect(request: HttpRequest, exec_id: str) -> JsonResponse:
    return JsonResponse(exec_service.exec_inspect(exec_service.get_exec(exec_id)))


__all__ = ["container_attach", "container_attach_ws", "container_exec_create", "container_rename",
           "container_resize", "container_top", "exec_inspect", "exec_resize", "exec_start"]
