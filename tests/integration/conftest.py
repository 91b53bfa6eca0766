"""Real peers for integration tests: a Celery worker process on real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

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
        import requests

        from tests.integration.registry import free_port

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        if own_index:
            extra_env["DOCKER_HUB_INDEX_URL"] = url
        for key, value in extra_env.items():
            monkeypatch.setenv(key, value)
        start_worker()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings", "DATABASE_URL": database_url(),
               "IMAGESTORE_ROOT": str(store_root), "REDIS_URL": redis_broker}
        log = open(tmp_path / f"gunicorn-{port}.log", "wb")  # noqa: SIM115 - lives with the server
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "dashboard.wsgi", "--bind", f"127.0.0.1:{port}", "--threads", "8",
             "--timeout", "600"], cwd=ROOT, env=env, stdout=log, stderr=log,
        )
        servers.append(server)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/docker/_ping", timeout=1).status_code == 200:
                    return url
            except requests.RequestException:
                time.sleep(0.1)
        raise AssertionError((tmp_path / f"gunicorn-{port}.log").read_text())

    yield start
    for server in servers:
        server.terminate()
        server.wait(10)
