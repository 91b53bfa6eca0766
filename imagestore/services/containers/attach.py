"""Attaching to the I/O of a running process, a container's or an exec's (``docker attach``,
``docker run`` in the foreground, ``docker exec -it``, the browser's terminal).

The process belongs to its supervisor (imagestore/supervisor.py), which serves its I/O
over ``attach.sock`` in the process's folder; this module is the client side::

    with attach(container, stdin=True, stdout=True, stderr=True) as stream:
        stream.send(b"ls\\n")           # the process's stdin (with detach keys, for a terminal)
        stream.close_stdin()           # end of input (half-close)
        for kind, data in stream.frames():   # 1 stdout, 2 stderr (a terminal's is all 1)
            ...

``Attachment.fileno()`` suits ``select``; ``read()`` answers the frames one ``recv`` brought
(``[]`` possibly, ``None`` at the end); ``recv_raw()`` answers Docker's multiplexed stream
bytes as they come, for a server relaying them. ``resize(container, height, width)``
sets the terminal's size (``exec.resize_exec`` for an exec). Attaching to a container that
has not started yet waits for its start (as ``docker run`` attaches, then starts): nothing
it writes is missed, since its supervisor replays its log from where it stood at attach time.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.utils.translation import gettext

from ...errors import BadRequest, Conflict
from ...models import Container
from ...supervisor import socket_path
from .lifecycle import reconcile
from .lookup import RUNNING_STATES, container_dir

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CTRL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(spec: str | None) -> bytes:
    """Docker's ``detachKeys`` (``ctrl-p,ctrl-q``, ``a,ctrl-[``...) as bytes, as moby's term.ToBytes."""
    spec = DEFAULT_DETACH_KEYS if spec is None or spec == "" else spec
    codes = bytearray()
    for key in spec.split(","):
        if len(key) == 1 and key.isascii():
            codes.append(ord(key))
        elif key.startswith("ctrl-") and len(key) == 6:
            char = key[5]
            if "a" <= char <= "z":
                codes.append(ord(char) - ord("a") + 1)
            elif char in _CTRL:
                codes.append(_CTRL[char])
            else:
                raise BadRequest(gettext("Unknown character: '%(key)s'") % {"key": key})
        else:
            raise BadRequest(gettext("Unknown character: '%(key)s'") % {"key": key})
    return bytes(codes)


class Attachment:
    """One client's connection to a process's I/O."""

    def __init__(self, sock: socket.socket, *, tty: bool) -> None:
        self.sock = sock
        self.tty = tty
        self._buffer = b""

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, data: bytes) -> None:
        """Input for the process (ignored when it has no open stdin or stdin was not attached)."""
        self.sock.sendall(data)

    def close_stdin(self) -> None:
        """The end of this client's input (Docker's half-close)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def recv_raw(self, size: int = 65536) -> bytes:
        """Docker's multiplexed stream bytes as they come; ``b""`` at the end."""
        try:
            return self.sock.recv(size)
        except ConnectionResetError:
            return b""

    def read(self) -> list[tuple[int, bytes]] | None:
        """The whole frames one receive completed, or None when the output has ended."""
        data = self.recv_raw()
        if not data:
            return None
        self._buffer += data
        frames = []
        while len(self._buffer) >= 8:
            size = int.from_bytes(self._buffer[4:8], "big")
            if len(self._buffer) < 8 + size:
                break
            frames.append((self._buffer[0], self._buffer[8:8 + size]))
            self._buffer = self._buffer[8 + size:]
        return frames

    def frames(self) -> Iterator[tuple[int, bytes]]:
        while (got := self.read()) is not None:
            yield from got

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Attachment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connect(directory: Path) -> socket.socket | None:
    try:
        directory_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY)
    except OSError:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path(directory_fd))
        return sock
    except OSError:
        sock.close()
        return None
    finally:
        os.close(directory_fd)


def _state(directory: Path) -> tuple[str, int]:
    try:
        path = directory / "state"
        return path.read_text(), path.stat().st_mtime_ns
    except OSError:
        return "", 0


def _replayed(log: Path, offset: int, streams: set[int], tty: bool) -> Attachment:
    """An attachment whose whole output is what the log holds past ``offset`` (the run
    ended before the client could connect), fed by a thread through a socket pair."""
    ours, theirs = socket.socketpair()

    def feed() -> None:
        try:
            with open(log, "rb") as source:
                source.seek(offset)
                while len(header := source.read(8)) == 8:
                    record = header + source.read(int.from_bytes(header[4:8], "big"))
                    if header[0] in streams:
                        ours.sendall(record)
        except OSError:
            pass
        finally:
            ours.close()

    threading.Thread(target=feed, daemon=True).start()
    return Attachment(theirs, tty=tty)


def attach_process(directory: Path, log: Path, *, tty: bool, running: Callable[[], bool], stdin: bool = False,
                   stdout: bool = True, stderr: bool = True, logs: bool = False, detach_keys: str | None = None,
                   keep_going: Callable[[], bool] | None = None, timeout: float | None = None,
                   started: bool = False) -> Attachment:
    """Attach to the process whose supervisor serves ``directory/attach.sock``, waiting for it
    to start when it has not (until ``keep_going`` says no or ``timeout`` has passed: then an
    attachment that has ended). ``logs``: its log first (``docker attach --logs``).
    ``started``: the run to attach to has been started already (an exec): if it has ended,
    its output is replayed rather than the next run waited for."""
    keys = list(parse_detach_keys(detach_keys)) if tty else None
    streams = {n for n, wanted in ((1, stdout), (2, stderr)) if wanted}
    deadline = None if timeout is None else time.monotonic() + timeout
    is_running = running()
    try:
        offset = 0 if logs or not is_running and not log.exists() else log.stat().st_size
    except OSError:
        offset = 0
    if is_running and not logs:
        offset_hello: int | None = None
    else:
        offset_hello = offset
    before = _state(directory)
    while True:
        sock = _connect(directory)
        if sock is not None:
            hello = {"attach": {"stdin": stdin, "stdout": stdout, "stderr": stderr, "from": offset_hello,
                                "detach_keys": keys}}
            sock.sendall(json.dumps(hello).encode() + b"\n")
            return Attachment(sock, tty=tty)
        state = _state(directory)
        ended = state[0] == "exited" and (state != before or is_running or started)
        if ended or not directory.exists():
            return _replayed(log, offset, streams, tty)
        if (keep_going is not None and not keep_going()) or (deadline is not None and time.monotonic() > deadline):
            ours, theirs = socket.socketpair()
            ours.close()
            return Attachment(theirs, tty=tty)
        time.sleep(0.02)


def attach(container: Container, *, stdin: bool = False, stdout: bool = True, stderr: bool = True,
           logs: bool = False, detach_keys: str | None = None, keep_going: Callable[[], bool] | None = None,
           timeout: float | None = None) -> Attachment:
    """Attach to a container's process (see the module's docstring); if it is not running, from its next start."""
    directory = container_dir(container)
    pk = container.pk

    def running() -> bool:
        current = Container.objects.filter(pk=pk).first()
        return current is not None and reconcile(current).state in RUNNING_STATES

    return attach_process(directory, directory / "container.log", tty=bool(container.config.get("Tty")),
                          running=running, stdin=stdin, stdout=stdout, stderr=stderr, logs=logs,
                          detach_keys=detach_keys, keep_going=keep_going, timeout=timeout)


def resize_process(directory: Path, height: int, width: int, *, wait: float = 2.0) -> bool:
    """Set the terminal size of the process served in ``directory``; False if nothing serves it."""
    if not (0 <= height < 1 << 16 and 0 <= width < 1 << 16):
        raise BadRequest(gettext("height and width must be between 0 and 65535"))
    deadline = time.monotonic() + wait
    while (sock := _connect(directory)) is None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    with sock:
        sock.settimeout(5)
        sock.sendall(json.dumps({"resize": [height, width]}).encode() + b"\n")
        try:
            return sock.recv(16).startswith(b"ok")
        except OSError:
            return False


def resize(container: Container, height: int, width: int) -> None:
    """``docker resize`` (the terminal's rows and columns) of a running container."""
    if reconcile(container).state not in RUNNING_STATES:
        raise Conflict(gettext("Container %(container_id)s is not running") % {"container_id": container.id})
    resize_process(container_dir(container), height, width)
