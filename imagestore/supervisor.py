"""Owns one running process of a container, its terminal and its I/O.

``python -m imagestore.supervisor CONTAINER_ID`` runs the container's own process;
``python -m imagestore.supervisor CONTAINER_ID EXEC_ID`` runs one ``docker exec``.
Started detached (by ``start_container`` / ``start_exec``), so the process outlives the web
server and the workers, as containerd's shim outlives dockerd.

How it runs the process: ``runc run -d`` (or ``runc exec -d``) with this process as the
child subreaper (``PR_SET_CHILD_SUBREAPER``), so when runc exits the container's process
becomes our child and ``waitpid`` gives its exit status. With a terminal, runc is given
``--console-socket`` and sends the pseudo-terminal's master over it (``SCM_RIGHTS``,
https://github.com/opencontainers/runc/blob/main/docs/terminals.md); without one, the
process gets pipes (stdin only when it is open, ``/dev/null`` otherwise).

How it serves the I/O: a unix socket, ``attach.sock`` in the process's folder. A client
sends one JSON line, then (for an attach) its stdin bytes; half-closing its side is the end
of its stdin. What it reads back is Docker's multiplexed stream (8-byte frame headers,
https://docs.docker.com/reference/api/engine/version/v1.47/#tag/Container/operation/ContainerAttach),
the same frames written to the log (``container.log``, ``docker logs``), so a client that
asks ``{"from": offset}`` gets the log from that offset and then the live output with no
gap and no repeat (this process is single-threaded: replay and live output cannot interleave).

- ``{"attach": {"stdin": bool, "stdout": bool, "stderr": bool, "from": int | null,
  "detach_keys": [int, ...] | null}}``: an attached client, any number of them.
- ``{"resize": [height, width]}``: ``TIOCSWINSZ`` on the terminal; answered ``ok``.

Detach keys (a terminal's input only, as Docker) end that client's attach, not the process.
When a client's stdin ends: with ``StdinOnce`` and no terminal the process's stdin is
closed; otherwise that attach ends (moby's container/stream/attach.go does the same).

The exit is written to ``exit.json`` before the clients' output ends (``reconcile`` records a
container's from it, the first to see it). This module imports no Django until the process
has ended (a container's supervisor then records the exit in the database if nobody did), so
starting is quick.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STDOUT, STDERR = 1, 2
PR_SET_CHILD_SUBREAPER = 36
SOCKET_NAME = "attach.sock"
# After the process has exited, output still in flight (a pipe a background child holds)
# is read for at most this long.
DRAIN_SECONDS = 1.0
SEND_TIMEOUT = 30.0
# How long a container's supervisor gives a waiting client to record the exit before it does.
RECORD_GRACE = 1.0  # a client that takes no output for this long is dropped, not waited for


def frame(stream: int, data: bytes) -> bytes:
    """One frame of Docker's multiplexed stream: stream type, 3 zero bytes, big-endian size."""
    return bytes((stream, 0, 0, 0)) + struct.pack(">I", len(data)) + data


def socket_path(directory_fd: int) -> str:
    """A unix socket's path is limited to 107 bytes and a container's folder is often longer:
    the socket is reached through ``/proc/self/fd`` of an open handle on the folder."""
    return f"/proc/self/fd/{directory_fd}/{SOCKET_NAME}"


def exit_status(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as a shell says


def runtime_failure_code(message: str) -> int:
    """Docker's exit codes when the process could not be started at all."""
    text = message.lower()
    if "not found" in text or "no such file" in text:
        return 127
    if "permission denied" in text:
        return 126
    return 128


class Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = b""
        self.hello: dict[str, Any] | None = None
        self.stdin = False
        self.streams: set[int] = set()
        self.detach_keys = b""
        self.matched = 0

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False


class Session:
    """The process's I/O: its output to the log and to every client, clients' input to it."""

    def __init__(self, directory: Path, *, tty: bool, open_stdin: bool, stdin_once: bool, log_path: Path,
                 console_size: list[int] | None = None) -> None:
        self.directory = directory
        self.tty, self.open_stdin, self.stdin_once = tty, open_stdin, stdin_once
        self.log_path = log_path
        self.log = open(log_path, "ab", buffering=0)  # noqa: SIM115 - open for the process's life
        self.console_size = console_size
        self.dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(socket_path(self.dir_fd))
        except FileNotFoundError:
            pass
        self.listener.bind(socket_path(self.dir_fd))
        self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.clients: dict[int, Client] = {}
        self.outputs: dict[int, int] = {}  # fd -> stream
        self.stdin_fd: int | None = None
        self.master: int | None = None
        self.exit_code: int | None = None
        self.wake_r, self.wake_w = os.pipe()

    # --- starting -------------------------------------------------------------------------

    def start(self, command: list[str], pid_file: Path) -> tuple[int | None, str]:
        """Run ``command`` (runc ... -d); the process's pid, or None and runc's error."""
        pid_file.unlink(missing_ok=True)
        errors_r, errors_w = os.pipe()
        child_fds: list[int] = [errors_w]
        console: socket.socket | None = None
        console_dir = ""
        if self.tty:
            console_dir = tempfile.mkdtemp(prefix="imagestore-console-")
            console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            console.bind(f"{console_dir}/console.sock")
            console.listen(1)
            command = [*command[:2], "--console-socket", f"{console_dir}/console.sock", *command[2:]]
            stdin, stdout, stderr = subprocess.DEVNULL, errors_w, errors_w
        else:
            if self.open_stdin:
                stdin_r, stdin_w = os.pipe()
                self.stdin_fd = stdin_w
                stdin = stdin_r
                child_fds.append(stdin_r)
            else:
                stdin = subprocess.DEVNULL  # type: ignore[assignment]
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            child_fds += [out_w, err_w]
            self.outputs = {out_r: STDOUT, err_r: STDERR}
            stdout, stderr = out_w, err_w
            os.close(errors_w)
            child_fds.remove(errors_w)
            os.close(errors_r)
            errors_r = -1
        runtime = subprocess.Popen(command, stdin=stdin, stdout=stdout, stderr=stderr, close_fds=True)
        for fd in child_fds:
            os.close(fd)
        if console is not None:
            console.settimeout(0.05)
            while self.master is None:
                try:
                    connection, _ = console.accept()
                except TimeoutError:
                    if runtime.poll() is not None:
                        break
                    continue
                with connection:
                    _, fds, _, _ = socket.recv_fds(connection, 1024, 1)
                self.master = fds[0] if fds else None
            console.close()
            os.unlink(f"{console_dir}/console.sock")
            os.rmdir(console_dir)
        code = runtime.wait()
        message = ""
        if errors_r >= 0:
            os.set_blocking(errors_r, False)
            try:
                message = os.read(errors_r, 65536).decode("utf-8", "replace")
            except BlockingIOError:
                pass
            os.close(errors_r)
        if code != 0 or not pid_file.exists():
            if self.tty and message:
                self.output(STDERR, message.encode())
            return None, message or f"the runtime failed with status {code}"
        if self.master is not None:
            self.stdin_fd = self.master if self.open_stdin else None
            self.outputs = {self.master: STDOUT}
            if self.console_size:
                self.resize(*self.console_size)
        return int(pid_file.read_text().strip()), ""

    def reap(self, pid: int) -> None:
        """The process is our child now (subreaper): wait for it in a thread, wake the loop."""

        def wait() -> None:
            code = 255
            while True:
                try:
                    child, status = os.waitpid(-1, 0)
                except ChildProcessError:
                    # Not ours (no subreaper): watch it go, its status unknown.
                    while os.path.exists(f"/proc/{pid}"):
                        time.sleep(0.05)
                    break
                if child == pid:
                    code = exit_status(status)
                    break
            self.exit_code = code
            os.write(self.wake_w, b"x")

        threading.Thread(target=wait, daemon=True).start()

    # --- serving ----------------------------------------------------------------------------

    def output(self, stream: int, data: bytes) -> None:
        record = frame(stream, data)
        self.log.write(record)
        for client in list(self.clients.values()):
            if stream in client.streams and not client.send(record):
                self.drop(client)

    def resize(self, height: int, width: int) -> None:
        if self.master is not None:
            try:
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
            except OSError:
                pass

    def drop(self, client: Client) -> None:
        fd = client.sock.fileno()
        if fd >= 0 and fd in self.clients:
            try:
                self.selector.unregister(client.sock)
            except KeyError:  # its input had ended already
                pass
            del self.clients[fd]
        try:
            client.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        client.sock.close()

    def close_stdin(self) -> None:
        if self.stdin_fd is not None and self.stdin_fd != self.master:
            os.close(self.stdin_fd)
        self.stdin_fd = None

    def write_stdin(self, data: bytes) -> None:
        if self.stdin_fd is None or not data:
            return
        try:
            os.write(self.stdin_fd, data)
        except OSError:
            self.close_stdin()

    def greet(self, client: Client, hello: dict[str, Any]) -> None:
        if "resize" in hello:
            try:
                height, width = (int(v) & 0xFFFF for v in hello["resize"])
            except (TypeError, ValueError):
                self.drop(client)
                return
            self.resize(height, width)
            client.send(b"ok\n")
            self.drop(client)
            return
        attach = hello.get("attach") or {}
        client.hello = attach
        client.stdin = bool(attach.get("stdin")) and self.open_stdin
        client.streams = {s for s, key in ((STDOUT, "stdout"), (STDERR, "stderr")) if attach.get(key)}
        client.detach_keys = bytes(attach.get("detach_keys") or b"") if self.tty else b""
        offset = attach.get("from")
        if offset is not None:
            self.replay(client, int(offset))

    def replay(self, client: Client, offset: int) -> None:
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            while True:
                header = log.read(8)
                if len(header) < 8:
                    return
                size = struct.unpack(">I", header[4:])[0]
                record = header + log.read(size)
                if header[0] in client.streams and not client.send(record):
                    self.drop(client)
                    return

    def client_input(self, client: Client, data: bytes) -> None:
        if client.hello is None:
            client.pending += data
            if b"\n" not in client.pending:
                if len(client.pending) > 65536:
                    self.drop(client)
                return
            line, data = client.pending.split(b"\n", 1)
            client.pending = b""
            try:
                hello = json.loads(line)
            except ValueError:
                self.drop(client)
                return
            self.greet(client, hello)
            if client.sock.fileno() < 0:
                return
        if not data or not client.stdin:
            return
        if not client.detach_keys:
            self.write_stdin(data)
            return
        keys, passed = client.detach_keys, bytearray()
        for byte in data:
            if byte == keys[client.matched]:
                client.matched += 1
                if client.matched == len(keys):
                    self.write_stdin(bytes(passed))
                    self.drop(client)  # detached: the process goes on
                    return
                continue
            if client.matched:  # a partial match was ordinary input after all
                passed += keys[:client.matched]
                client.matched = 0
                if byte == keys[0]:
                    client.matched = 1
                    continue
            passed.append(byte)
        self.write_stdin(bytes(passed))

    def client_eof(self, client: Client) -> None:
        if client.hello is not None and client.stdin and self.stdin_once and not self.tty:
            self.close_stdin()  # its stdin ended: so does the process's; output goes on
            client.stdin = False
            self.selector.unregister(client.sock)  # nothing more to read from it
            return
        self.drop(client)

    def serve(self, on_exit: Callable[[], None] | None = None) -> int:
        sel = self.selector
        sel.register(self.listener, selectors.EVENT_READ, "listen")
        sel.register(self.wake_r, selectors.EVENT_READ, "exit")
        for fd in self.outputs:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ, "output")
        drain_until: float | None = None
        while True:
            if drain_until is not None and (not self.outputs or time.monotonic() >= drain_until):
                break
            timeout = None if drain_until is None else max(0.0, drain_until - time.monotonic())
            for key, _ in sel.select(timeout):
                if key.data == "listen":
                    try:
                        sock, _ = self.listener.accept()
                    except OSError:
                        continue
                    sock.settimeout(SEND_TIMEOUT)
                    self.clients[sock.fileno()] = Client(sock)
                    sel.register(sock, selectors.EVENT_READ, "client")
                elif key.data == "exit":
                    os.read(self.wake_r, 1)
                    sel.unregister(self.wake_r)
                    drain_until = time.monotonic() + DRAIN_SECONDS
                    if on_exit is not None:
                        on_exit()
                elif key.data == "output":
                    fd = key.fd
                    try:
                        data = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    except OSError:  # EIO: the terminal's last user has gone
                        data = b""
                    if data:
                        self.output(self.outputs[fd], data)
                        continue
                    sel.unregister(fd)  # its end: EOF, or EIO once a terminal's last user has gone
                    del self.outputs[fd]
                    if fd == self.stdin_fd:  # the terminal's master was the stdin too
                        self.stdin_fd = None
                    if fd == self.master:
                        self.master = None
                    os.close(fd)
                else:
                    client = self.clients.get(key.fd)
                    if client is None:
                        continue
                    try:
                        data = client.sock.recv(65536)
                    except OSError:
                        data = b""
                    if data:
                        try:
                            self.client_input(client, data)
                        except (ValueError, TypeError, AttributeError, KeyError):  # a malformed hello
                            self.drop(client)
                    else:
                        self.client_eof(client)
        return self.exit_code if self.exit_code is not None else 255

    def _late(self, client: Client) -> None:
        """A client that connected as the process ended: its hello, its replay, its end."""
        try:
            client.sock.settimeout(2)
            while client.hello is None and client.sock.fileno() >= 0:
                data = client.sock.recv(65536)
                if not data:
                    break
                self.client_input(client, data)
        except OSError:
            pass
        self.drop(client)

    def stop_listening(self) -> None:
        """No one connects from now on (before the exit is written: a restart's new supervisor
        binds its own socket at the same path, which must not be unlinked by this one)."""
        try:
            os.unlink(socket_path(self.dir_fd))
        except FileNotFoundError:
            pass

    def close(self) -> None:
        self.stop_listening()  # (already, unless the start failed)
        # Those who connected meanwhile (waiting in the listen backlog, or not greeted yet)
        # still get what they asked for: the log from their offset.
        self.listener.setblocking(False)
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                break
            sock.setblocking(True)
            self.clients[sock.fileno()] = Client(sock)
        for client in list(self.clients.values()):
            if client.hello is None:
                self._late(client)
            else:
                self.drop(client)
        self.clients.clear()
        self.listener.close()
        os.close(self.dir_fd)
        self.log.close()


def supervisor_command(*args: str) -> list[str]:
    """How to start a supervisor: this file run by path, not ``-m imagestore.supervisor``, so
    that starting a container does not wait for the package's imports (Celery's app)."""
    loader = ("import importlib.util as u, sys; s = u.spec_from_file_location('imagestore_supervisor', sys.argv[1]); "
              "m = u.module_from_spec(s); s.loader.exec_module(m); sys.exit(m.main(sys.argv[2:]))")
    return [sys.executable, "-c", loader, os.path.abspath(__file__), *args]


def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _serve(session: Session, command: list[str], directory: Path, on_started: Callable[[], object]) -> tuple[int, str]:
    pid, error = session.start(command, directory / "pid")
    on_started()
    if pid is None:
        said = b""
        for fd, stream in list(session.outputs.items()):  # what the runtime said before failing
            while data := os.read(fd, 65536):
                session.output(stream, data)
                said += data
            os.close(fd)
        session.outputs = {}
        error = said.decode("utf-8", "replace") or error
        return runtime_failure_code(error), error.strip()
    session.reap(pid)
    return session.serve(), ""


def run(directory: Path, command: list[str], io: dict[str, Any], log_path: Path,
        on_started: Callable[[], object], on_ended: Callable[[int, str], object]) -> tuple[int, str]:
    """Start the process, serve its I/O until it has exited; its exit code and any start error.
    ``on_ended`` records them before the clients' output ends, so a client that asks for the
    exit code once its output has ended (``docker exec`` inspects the exec) finds it."""
    _become_subreaper()
    session = Session(directory, tty=bool(io.get("tty")), open_stdin=bool(io.get("stdin")),
                      stdin_once=bool(io.get("stdin_once")), log_path=log_path,
                      console_size=io.get("console_size"))
    try:
        try:
            code, error = _serve(session, command, directory, on_started)
        except Exception as exc:  # recorded, not lost with this process
            code, error = 255, f"the supervisor failed: {exc!r}"
        session.stop_listening()
        on_ended(code, error)
        return code, error
    finally:
        session.close()


def _ended(directory: Path) -> Callable[[int, str], None]:
    def record(code: int, error: str) -> None:
        try:
            (directory / "state").write_text("exited")
            exit_file = directory / "exit.json"
            exit_file.with_suffix(".tmp").write_text(json.dumps({"ExitCode": code, "Error": error}))
            exit_file.with_suffix(".tmp").replace(exit_file)
        except FileNotFoundError:  # removed meanwhile
            pass

    return record


def _exec_main(container_id: str, exec_id: str) -> int:
    root = Path(os.environ["IMAGESTORE_ROOT"])
    directory = root / "containers" / container_id / "execs" / exec_id
    spec = json.loads((directory / "exec.json").read_text())
    binary = os.environ.get("CONTAINER_RUNTIME_BINARY") or "runc"
    command = [binary, "exec", "-d", "--pid-file", str(directory / "pid"), "--process",
               str(directory / "process.json"), container_id]
    run(directory, command, spec["io"], directory / "output.log",
        on_started=lambda: (directory / "state").write_text("running"), on_ended=_ended(directory))
    return 0


def _container_main(container_id: str) -> int:
    root = Path(os.environ["IMAGESTORE_ROOT"])
    directory = root / "containers" / container_id
    io = json.loads((directory / "io.json").read_text()) if (directory / "io.json").exists() else {}
    binary = os.environ.get("CONTAINER_RUNTIME_BINARY") or "runc"
    state = directory / "state"
    if os.path.exists(f"/run/runc/{container_id}"):  # a stale one, if any (runc's default root)
        subprocess.run([binary, "delete", "--force", container_id], capture_output=True)
    command = [binary, "run", "-d", "--pid-file", str(directory / "pid"), "--bundle", str(directory), container_id]
    # The exit is written first (exit.json: a wait answers from it at once; from then on a
    # reconcile may remove the folder, --rm), then the runtime's and the database's work.
    code, error = run(directory, command, io, directory / "container.log",
                      on_started=lambda: state.write_text("running"), on_ended=_ended(directory))
    subprocess.run([binary, "delete", "--force", container_id], capture_output=True)
    # Whoever waits records the exit from exit.json (and with --rm removes the folder): then
    # this process is done without setting Django up (a second of CPU on a small machine).
    deadline = time.monotonic() + RECORD_GRACE
    while time.monotonic() < deadline:
        if not directory.exists() or (directory / "recorded").exists():
            return 0
        time.sleep(0.02)
    # Nobody did: Django now, off the start's path, and record it here.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    from imagestore.services.containers.lifecycle import record_exit

    # Unless a reconcile did; with --rm this removes the folder.
    record_exit(container_id, code, error, supervisor_pid=os.getpid())
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2:
        return _exec_main(argv[0], argv[1])
    return _container_main(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
