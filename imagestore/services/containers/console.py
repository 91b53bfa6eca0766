"""A new process on a pseudo-terminal inside a running container (``docker exec -it``'s
engine side for the browser terminal): ``runc exec --tty`` in the foreground.

runc creates the terminal inside the container and copies between it and its own stdio,
which is a pseudo-terminal held here ("pass-through" mode of
https://github.com/opencontainers/runc/blob/main/docs/terminals.md): reads of our master
are the process's output, writes its input, a resize is ``TIOCSWINSZ`` on it plus SIGWINCH
to runc. runc exits with the process's code. Closing a ``Terminal`` ends that process
(SIGHUP, then SIGKILL), never the container.

The process is the container's own (its config.json ``process``: user, capabilities, env,
working directory, rlimits, no-new-privileges) with other arguments, so an exec gets no
more than the container's main process has.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

from ...errors import Conflict, ServiceError
from ...models import Container
from .lifecycle import create_container, reconcile, start_container
from .lookup import RUNNING_STATES, RuntimeUnavailable, container_dir, runtime_binary

# The shell of a new terminal: bash where the image has it, else sh.
DEFAULT_SHELL = ["/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; fi; exec sh"]
# runc answers on the console socket within milliseconds; a stuck runtime must not hold a thread.
CONSOLE_TIMEOUT = 15.0
# After the hang-up (the master closed), the process gets this long before SIGKILL.
HANGUP_GRACE = 1.0


def _window(rows: int, cols: int) -> tuple[int, int]:
    # A window of 0 or absurd size is clamped: the kernel takes 16 bits per dimension.
    return max(1, min(int(rows), 1000)), max(1, min(int(cols), 1000))


class Terminal:
    """The master side of a process's pseudo-terminal, and the ``runc exec`` that waits for it."""

    def __init__(self, master: int, runtime: subprocess.Popen[bytes], pid_file: Path, workdir: Path) -> None:
        self.master = master
        self._runtime = runtime
        self._pid_file = pid_file
        self._workdir = workdir
        self._closed = False

    def fileno(self) -> int:
        return self.master

    def read(self, size: int = 65536) -> bytes | None:
        """Output (``b""``: nothing yet), or None once the process has ended (its side of the
        terminal closed: EIO on Linux)."""
        try:
            return os.read(self.master, size) or None
        except OSError:
            return None

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.master, view)
            view = view[written:]

    def resize(self, rows: int, cols: int) -> None:
        rows, cols = _window(rows, cols)
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        # runc copies the size of its own terminal (ours) to the container's on SIGWINCH.
        if self._runtime.poll() is None:
            with contextlib.suppress(OSError):
                os.kill(self._runtime.pid, signal.SIGWINCH)

    def pid(self) -> int | None:
        """The process's pid on the host (runc's --pid-file)."""
        try:
            return int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def exit_code(self) -> int | None:
        code = self._runtime.poll()
        return None if code is None else (code if code >= 0 else 128 - code)

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            self._runtime.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code()

    def hang_up(self) -> int | None:
        """End the process (not the container): SIGHUP, as a closed terminal sends, then
        SIGKILL; returns once runc has exited. The master stays open for reads still in flight."""
        pid = self.pid()
        for sig in (signal.SIGHUP, signal.SIGKILL):
            if self._runtime.poll() is not None or pid is None:
                break
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
            if self.wait(HANGUP_GRACE) is not None:
                break
        if self.wait(10) is None:
            self._runtime.kill()
            self._runtime.wait()
        return self.exit_code()

    def close(self) -> int | None:
        """Hang up, then release the terminal and the process's files."""
        if self._closed:
            return self.exit_code()
        self._closed = True
        code = self.hang_up()
        with contextlib.suppress(OSError):
            os.close(self.master)
        shutil.rmtree(self._workdir, ignore_errors=True)
        return code


def _dies_with_us() -> list[str]:
    """runc is killed when the thread that started it dies with its web process (a worker
    killed by gunicorn's timeout or OOM): runc's end closes the container's terminal, which
    hangs up the shell. util-linux's setpriv sets the parent-death signal and execs runc
    (no preexec_fn in a threaded server)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def _wait_started(runtime: subprocess.Popen[bytes], pid_file: Path, log: Path) -> None:
    """Until runc has written the process's pid (it started) or has exited (it could not)."""
    deadline = time.monotonic() + CONSOLE_TIMEOUT
    while not (pid_file.exists() and pid_file.read_text().strip()):
        if runtime.poll() is not None or time.monotonic() > deadline:
            raise _runtime_failed(runtime, log)
        time.sleep(0.01)


def _runtime_failed(runtime: subprocess.Popen[bytes], log: Path) -> ServiceError:
    if runtime.poll() is None:
        runtime.kill()
    runtime.wait()
    message = log.read_text("utf-8", "replace").strip()[-2000:] or f"exit code {runtime.returncode}"
    return ServiceError(f"cannot start a terminal in the container: {message}")


def _wait_created(binary: str, container: Container, timeout: float = 5) -> None:
    """The supervisor marks a container running as it starts runc, a moment before runc
    has created it: an exec right after a start waits for the runtime's own state."""
    deadline = time.monotonic() + timeout
    while True:
        state = subprocess.run([binary, "state", container.id], capture_output=True, text=True)
        if state.returncode == 0 and json.loads(state.stdout).get("status") == "running":
            return
        if time.monotonic() > deadline:
            raise Conflict(f"Container {container.id} is not running")
        time.sleep(0.05)


def exec_terminal(container: Container, args: list[str] | None = None, *, rows: int = 24, cols: int = 80,
                  env: list[str] | None = None) -> Terminal:
    """Start ``args`` (default: bash, else sh) on a new pseudo-terminal in the running container."""
    reconcile(container)
    if container.state not in RUNNING_STATES:
        raise Conflict(f"Container {container.id} is not running")
    binary = runtime_binary()
    if binary is None:
        raise RuntimeUnavailable("no OCI runtime is installed")
    _wait_created(binary, container)
    directory = container_dir(container)
    process: dict[str, Any] = json.loads((directory / "config.json").read_text())["process"]
    rows, cols = _window(rows, cols)
    process_env = [e for e in process.get("env", []) if not e.startswith("TERM=")]
    process.update(args=list(args or DEFAULT_SHELL), terminal=True, consoleSize={"height": rows, "width": cols},
                   env=[*process_env, "TERM=xterm-256color", *(env or [])])
    # A private folder (0700) for the process file, the pid file and runc's own errors.
    workdir = Path(tempfile.mkdtemp(prefix="imagestore-exec-"))
    master, slave = os.openpty()
    try:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        (workdir / "process.json").write_text(json.dumps(process))
        log = workdir / "runc.log"
        with open(log, "wb") as errors:
            # runc makes the terminal inside the container and copies between it and its own
            # stdio, our pty: so it stays in the foreground and exits with the process's code
            # (its --console-socket is only for a detached runc, which loses that code).
            runtime = subprocess.Popen(
                [*_dies_with_us(), binary, "exec", "--tty", "--process", str(workdir / "process.json"),
                 "--pid-file", str(workdir / "pid"), container.id],
                stdin=slave, stdout=slave, stderr=errors, start_new_session=True,
            )
        os.close(slave)
        slave = -1
        _wait_started(runtime, workdir / "pid", log)
    except BaseException:
        for fd in (master, slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Terminal(master, runtime, workdir / "pid", workdir)


def open_terminal(container: Container, mode: str, *, rows: int = 24, cols: int = 80) -> Terminal:
    """The browser terminal's two modes: a new shell (``exec``), or the container's own
    terminal (``attach``)."""
    if mode == "attach":
        raise Conflict("attaching to a container's own terminal is not available yet: open a new shell")
    return exec_terminal(container, rows=rows, cols=cols)


def run_container(image_ref: str, *, cmd: list[str] | None = None, env: list[str] | None = None, name: str = "",
                  tty: bool = False) -> Container:
    """``docker run -d [-it]`` for the dashboard's Run form: create, then start."""
    container = create_container(image_ref, cmd=cmd, env=env or [], name=name)
    return start_container(container)
