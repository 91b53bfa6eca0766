"""`make run` (scripts/run.sh) stops every process it started on SIGTERM, as on Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.registry import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _session(sid: int) -> set[int]:
    """Every process of one session (run.sh starts one; its servers keep it)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3]) == sid:
                    found.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    """Whatever a failing test leaves running is killed."""
    yield
    for sid in _sessions:
        for pid in _session(sid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    _sessions.clear()


_sessions: list[int] = []


def _start(tmp_path: Path, **extra: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = tmp_path / "run.log"
    env = {**os.environ, "PORT": str(port), "VAR_DIR": str(tmp_path / "var"),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}", "IMAGESTORE_ROOT": str(tmp_path / "store"),
           # The test settings: the test Redis database and this run's own queue.
           "DJANGO_SETTINGS_MODULE": "dashboard.test_settings", "DJANGO_SUPERUSER_PASSWORD": "run-sh-admin-pw",
           **extra}
    for name in ("DJANGO_SUPERUSER_USERNAME", "WEB_CONCURRENCY", "WEB_THREADS", "STOP_GRACE"):
        if name not in extra:
            env.pop(name, None)
    with open(log, "wb") as out:
        process = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    _sessions.append(process.pid)
    return process, f"http://127.0.0.1:{port}", log


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent's reaping is left


def _stopped(process: subprocess.Popen[bytes], pids: set[int], log: Path, timeout: float) -> None:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(p) for p in pids | {process.pid}):
        time.sleep(0.1)
    left = sorted(p for p in pids | _session(process.pid) | {process.pid} if _alive(p))
    for pid in left:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running after SIGTERM: {left}\n{log.read_text()[-3000:]}"


def _serving(url: str) -> bool:
    try:
        return requests.get(f"{url}/docker/_ping", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _wait_serving(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while not _serving(url):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_web_processes_from_the_core_count_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    process, url, log = _start(tmp_path)
    _wait_serving(process, url, log)
    time.sleep(1)  # the Celery pool and beat are up too
    pids = {p for p in _descendants(process.pid) if _alive(p)}
    assert any(b"celery" in _cmdline(p) for p in pids)
    # WEB_CONCURRENCY unset: 2 x cores + 1 web processes (at most 8) besides gunicorn's master.
    web = [p for p in pids if b"gunicorn" in _cmdline(p)]
    assert len(web) == 1 + min(2 * (os.cpu_count() or 1) + 1, 8)
    process.send_signal(signal.SIGTERM)
    _stopped(process, pids, log, timeout=20)
    assert not _serving(url)


class _StalledServer:
    """An HTTP server that answers a big tarball's headers, then never sends the body."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connected = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: 1000000000\r\n\r\n")
            self.connected.set()

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.listener.close()


def test_sigterm_stops_a_worker_busy_with_a_job(tmp_path: Path) -> None:
    """A Celery warm shutdown waits for the running job, which may take hours: after
    STOP_GRACE seconds what is left is killed (the job's row is then the sweeper's)."""
    stalled = _StalledServer()
    try:
        process, url, log = _start(tmp_path, STOP_GRACE="3", WEB_CONCURRENCY="1", IMAGESTORE_URL_TIMEOUT="300",
                                   OUTBOUND_ALLOW="127.0.0.1")
        _wait_serving(process, url, log)
        response = requests.post(f"{url}/api/v1/images/import/", auth=("admin", "run-sh-admin-pw"),
                                 json={"url": f"http://127.0.0.1:{stalled.port}/rootfs.tar", "repository": "stalled"},
                                 timeout=30)
        assert response.status_code == 202, response.text
        assert stalled.connected.wait(30), log.read_text()  # the worker is inside the job
        pids = {p for p in _descendants(process.pid) if _alive(p)}
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _stopped(process, pids, log, timeout=15)
        assert time.monotonic() - started < 15
    finally:
        stalled.close()
