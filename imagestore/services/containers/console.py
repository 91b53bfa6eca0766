"""The browser terminal's sessions, over the engine's attach and exec services (attach.py,
exec.py): a new shell in a running container (``docker exec -it CONTAINER sh``) or the
container's own terminal (``docker attach``), as one small interface the WebSocket view
pumps: ``read`` (output), ``write`` (typed input), ``resize``, ``hang_up``, ``close``.

Ending a session ends what it started and nothing else: a new shell is hung up (SIGHUP,
as a closed terminal does, then SIGKILL); an attached container goes on running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable

from django.utils.translation import gettext

from ...errors import Conflict
from ...models import Container
from .attach import Attachment, attach, resize
from .exec import ExecInstance, attach_exec, create_exec, kill_exec, resize_exec, start_exec
from .lifecycle import create_container, reconcile, start_container
from .lookup import RUNNING_STATES

# The shell of a new terminal: bash where the image has it, else sh.
DEFAULT_SHELL = ["/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; fi; exec sh"]
# xterm.js understands what xterm does, 256 colours included.
TERMINAL_ENV = "TERM=xterm-256color"
# After SIGHUP, a shell gets this long to go before SIGKILL.
HANGUP_GRACE = 1.0


def _window(rows: int, cols: int) -> tuple[int, int]:
    # The kernel keeps 16 bits per dimension; a browser never needs more than this.
    return max(1, min(int(rows), 1000)), max(1, min(int(cols), 1000))


class TerminalSession:
    """One client's view of a process's terminal."""

    def __init__(self, attachment: Attachment, *, resize: Callable[[int, int], None],
                 hang_up: Callable[[], None], exit_code: Callable[[], int | None]) -> None:
        self.attachment = attachment
        self._resize = resize
        self._hang_up = hang_up
        self._exit_code = exit_code
        self._closed = False

    def fileno(self) -> int:
        return self.attachment.fileno()

    def read(self) -> bytes | None:
        """Output (``b""``: a frame not complete yet), or None once the output has ended."""
        frames = self.attachment.read()
        if frames is None:
            return None
        return b"".join(data for _, data in frames)

    def write(self, data: bytes) -> None:
        self.attachment.send(data)

    def resize(self, rows: int, cols: int) -> None:
        self._resize(*_window(rows, cols))

    def exit_code(self) -> int | None:
        return self._exit_code()

    def hang_up(self) -> int | None:
        """End what this session started (a new shell), not the container."""
        self._hang_up()
        return self.exit_code()

    def close(self) -> int | None:
        if not self._closed:
            self._closed = True
            self.hang_up()
            self.attachment.close()
        return self.exit_code()


def _require_running(container: Container) -> None:
    if reconcile(container).state not in RUNNING_STATES:
        raise Conflict(gettext("Container %(container_id)s is not running") % {"container_id": container.id})


def exec_terminal(container: Container, args: list[str] | None = None, *, rows: int = 24, cols: int = 80,
                  env: list[str] | None = None) -> TerminalSession:
    """A new process (default: bash, else sh) on a terminal of its own in the running container."""
    _require_running(container)
    size = list(_window(rows, cols))
    instance = create_exec(container, args or DEFAULT_SHELL, tty=True, stdin=True,
                           env=[TERMINAL_ENV, *(env or [])], console_size=size)
    start_exec(instance, console_size=size)
    attachment = attach_exec(instance, stdin=True)
    watchdog = _Watchdog(container, instance.pid())

    def hang_up() -> None:
        for sig in (signal.SIGHUP, signal.SIGKILL):
            if _exec_ended(instance, HANGUP_GRACE if sig == signal.SIGKILL else 0):
                break
            kill_exec(instance, sig)
        _exec_ended(instance, 10)
        watchdog.stand_down()

    def exit_code() -> int | None:
        ended = instance.exit()
        return None if ended is None else ended.get("ExitCode")

    return TerminalSession(attachment, resize=lambda r, c: resize_exec(instance, r, c), hang_up=hang_up,
                           exit_code=exit_code)


class _Watchdog:
    """Hangs up a browser's shell if the web process holding it dies (killed by gunicorn's
    timeout, the OOM killer): the exec runs under its own supervisor, which outlives web
    processes by design, so nothing else would end it. A small ``sh`` waits on a pipe whose
    only writer is this process; end-of-file means we are gone, and it sends SIGHUP, then
    SIGKILL, to the shell, if that pid is still a process of this container (no stranger
    that reused the number)."""

    SCRIPT = ('read _; for sig in HUP KILL; do grep -qs "$1" "/proc/$2/cgroup" || exit 0; '
              'kill -s "$sig" "$2" 2>/dev/null; sleep 1; done')

    def __init__(self, container: Container, pid: int) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe = -1
        if pid <= 0:
            return
        read_end, self._pipe = os.pipe()  # not inherited by anything else we start (O_CLOEXEC)
        try:
            self._process = subprocess.Popen(
                ["sh", "-c", self.SCRIPT, "terminal-watchdog", container.id, str(pid)], stdin=read_end,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            os.close(read_end)

    def stand_down(self) -> None:
        """The shell was ended here: the watchdog goes without a word."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        if self._pipe >= 0:
            with contextlib.suppress(OSError):
                os.close(self._pipe)
            self._pipe = -1


def _exec_ended(instance: ExecInstance, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while instance.state() in ("starting", "running") and instance.exit() is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def attach_terminal(container: Container, *, rows: int = 24, cols: int = 80, logs: bool = False) -> TerminalSession:
    """The container's own process: its terminal when it has one (``-t``), its input when it
    keeps stdin open (``-i``). ``logs``: its output so far first (a container just run from
    the Run form, whose first prompt came before the page attached)."""
    _require_running(container)
    tty = bool(container.config.get("Tty"))
    attachment = attach(container, stdin=bool(container.config.get("OpenStdin")), stdout=True, stderr=True,
                        logs=logs)
    pk = container.pk

    def resize_tty(r: int, c: int) -> None:
        if tty:
            resize(container, r, c)

    def exit_code() -> int | None:
        current = Container.objects.filter(pk=pk).first()
        if current is None or reconcile(current).state in RUNNING_STATES:
            return None
        return current.exit_code

    if tty:
        resize_tty(*_window(rows, cols))
    return TerminalSession(attachment, resize=resize_tty, hang_up=lambda: None, exit_code=exit_code)


def open_terminal(container: Container, mode: str, *, rows: int = 24, cols: int = 80,
                  logs: bool = False) -> TerminalSession:
    """The browser terminal's two modes: a new shell (``exec``) or the container's own (``attach``)."""
    if mode == "attach":
        return attach_terminal(container, rows=rows, cols=cols, logs=logs)
    return exec_terminal(container, rows=rows, cols=cols)


def run_container(image_ref: str, *, cmd: list[str] | None = None, env: list[str] | None = None, name: str = "",
                  tty: bool = False) -> Container:
    """``docker run -d [-it]`` for the dashboard's Run form: create (with a terminal and an open
    stdin when ``tty``), then start."""
    container = create_container(image_ref, cmd=cmd, env=env or [], name=name, tty=tty, open_stdin=tty)
    return start_container(container)
