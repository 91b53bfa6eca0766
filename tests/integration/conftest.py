"""Real peers for integration tests: a Celery worker process on real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from imagestore.dbutil import database_url

ROOT = Path(__file__).resolve().parents[2]




@pytest.fixture
def redis_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.fail(f"integration tests need Redis at {settings.REDIS_URL}; the broker is {url}")
    client = redis.Redis.from_url(url)
    client.ping()
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)  # no stray task messages from an earlier test
    return url


class Worker:
    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._log_file = open(log, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dashboard", "worker", "--pool", "solo", "--hostname", name,
             "--loglevel", "INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready." in self.log.read_bytes():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log.read_text()}")
            time.sleep(0.2)
        raise AssertionError(f"worker not ready in {timeout} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no clean-up code of the worker runs, as when a machine dies."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()


@pytest.fixture
def start_worker(redis_broker: str, store_root: Path, tmp_path: Path) -> Iterator[Callable[[str], Worker]]:
    workers: list[Worker] = []

    def start(name: str = "testworker@localhost") -> Worker:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
            "DATABASE_URL": database_url(),
            "IMAGESTORE_ROOT": str(store_root),
            "REDIS_URL": redis_broker,
            "JOB_PROGRESS_INTERVAL_MS": "100",
        }
        worker = Worker(name, env, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def start_dashboard(start_worker, store_root: Path, redis_broker: str, tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """gunicorn serving the dashboard on the test database, with a worker; returns its URL."""
    servers: list[subprocess.Popen[bytes]] = []

    def start(*, own_index: bool = False, **extra_env: str) -> str:
        """``own_index``: the dashboard is its own Docker Hub search index."""
        from tests.integration.registry import free_port

        port = free_port()
        if own_index:
            extra_env["DOCKER_HUB_INDEX_URL"] = f"http://127.0.0.1:{port}"
        for key, value in extra_env.items():
            monkeypatch.setenv(key, value)
        start_worker()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings", "DATABASE_URL": database_url(),
               "IMAGESTORE_ROOT": str(store_root), "REDIS_URL": redis_broker, "WEB_CONCURRENCY": "1",
               "WEB_THREADS": "8"}
        server, url = start_gunicorn(env, port, tmp_path / f"gunicorn-{port}.log")
        servers.append(server)
        return url

    yield start
    for server in servers:
        server.terminate()
        server.wait(10)


def start_gunicorn(env: dict[str, str], port: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn as `make run` starts it (scripts/gunicorn.conf.py, sized by WEB_CONCURRENCY and
    WEB_THREADS in ``env``) on ``port``; returns it and its URL once it answers."""
    import requests

    out = open(log, "wb")  # noqa: SIM115 - lives with the server
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "scripts/gunicorn.conf.py", "dashboard.wsgi"],
                              cwd=ROOT, env={**env, "PORT": str(port)}, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/docker/_ping", timeout=1).status_code == 200:
                return server, url
        except requests.RequestException:
            time.sleep(0.1)
    server.terminate()
    raise AssertionError(log.read_text())


@pytest.fixture
def paced_source() -> Iterator[Callable[..., str]]:
    """Serves one body over HTTP on loopback in ``piece``-sized writes with ``pause`` seconds
    after each (``pause_once``: after the first only), allowed by the outbound policy before any
    worker starts (workers inherit the allow-list); returns its URL."""
    import http.server
    import threading

    from tests.integration.registry import allow_outbound

    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(body: bytes, pause: float, *, piece: int = 32768, pause_once: bool = False) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for i in range(0, len(body), piece):
                        self.wfile.write(body[i:i + piece])
                        self.wfile.flush()
                        if i == 0 or not pause_once:
                            time.sleep(pause)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                return

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        allow_outbound(f"127.0.0.1:{server.server_address[1]}")
        return f"http://127.0.0.1:{server.server_address[1]}/rootfs.tar.gz"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def busybox(tmp_path: Path) -> Any:
    """An image of busybox-static's root filesystem (``busybox:static``), for containers run by runc."""
    import io

    from imagestore.services.import_ import import_image
    from tests.builders import busybox_rootfs, tar_directory
    from tests.conftest import require_tool

    require_tool("runc")
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    return import_image(io.BytesIO(tar_directory(rootfs, "gzip")), repository="busybox:static")
