"""Long answers on a real server (gunicorn with one thread): a client that leaves frees its
thread within seconds, and a silent stream ends after STREAM_IDLE_TIMEOUT. Before, each
abandoned ``docker pull``, ``logs -f`` or ``wait`` held a server thread for good."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from imagestore.dbutil import database_url
from imagestore.models import Container, Job
from imagestore.services import containers as service
from imagestore.services.import_ import import_image
from imagestore.services.tokens import create_token
from tests.builders import busybox_rootfs, tar_directory
from tests.conftest import require_tool
from tests.integration.conftest import start_gunicorn
from tests.integration.registry import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def serve(store_root: Path, redis_broker: str, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """gunicorn as `make run` starts it (scripts/gunicorn.conf.py), limited to one process of
    one thread: a request still held blocks every later one."""
    servers: list[subprocess.Popen[bytes]] = []

    def start(**extra_env: str) -> str:
        port = free_port()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings", "DATABASE_URL": database_url(),
               "IMAGESTORE_ROOT": str(store_root), "REDIS_URL": redis_broker,
               "WEB_CONCURRENCY": "1", "WEB_THREADS": "1", **extra_env}
        server, url = start_gunicorn(env, port, tmp_path / f"gunicorn-{port}.log")
        servers.append(server)
        return url

    yield start
    for server in servers:
        server.terminate()
        server.wait(15)


@pytest.fixture
def token(operator) -> str:  # type: ignore[no-untyped-def]
    return create_token(operator)[1]


@pytest.fixture
def quiet_container(tmp_path: Path) -> Iterator[Container]:
    """A running container that prints nothing."""
    require_tool("runc")
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    import_image(io.BytesIO(tar_directory(rootfs, "gzip")), repository="busybox:static")
    container = service.create_container("busybox:static", cmd=["sleep", "300"])
    service.start_container(container)
    container.refresh_from_db()
    assert container.state == "running"
    yield container
    container.refresh_from_db()
    if container.state in service.RUNNING_STATES:
        service.kill_container(container)
        service.wait_container(container, timeout=10)


def _abandon(url: str, method: str, path: str, headers: dict[str, str], hold: float = 1.0) -> None:
    """Send a request, wait while the server is inside it, then go away."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Length: 0",
                 *(f"{k}: {v}" for k, v in headers.items())]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        time.sleep(hold)


def _served_again(url: str, within: float = 8) -> float:
    """Seconds until the one thread serves another request (fails when it stays held)."""
    started = time.monotonic()
    try:
        response = requests.get(f"{url}/docker/_ping", timeout=within)
    except requests.Timeout:
        raise AssertionError(f"the server's only thread is still held after {within} s") from None
    assert response.status_code == 200
    return time.monotonic() - started


def _within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``'s answer, or a failure when it has none after ``seconds`` (a stream that never ends)."""
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"no answer after {seconds} s: the stream did not end"
    return outcome[0]


def test_an_abandoned_docker_pull_frees_its_thread(serve, token: str) -> None:  # type: ignore[no-untyped-def]
    url = serve()
    # No Celery worker: the pull stays queued and its progress stream silent.
    _abandon(url, "POST", "/docker/v1.47/images/create?fromImage=centos&tag=6.6", {"Authorization": f"Token {token}"})
    assert Job.objects.get().state == "queued"
    assert _served_again(url) < 5


def test_an_abandoned_logs_follow_frees_its_thread(serve, token: str, quiet_container: Container) -> None:  # type: ignore[no-untyped-def]
    url = serve()
    _abandon(url, "GET", f"/docker/v1.47/containers/{quiet_container.id}/logs?follow=1&stdout=1",
             {"Authorization": f"Token {token}"})
    assert _served_again(url) < 5
    _abandon(url, "GET", f"/api/v1/containers/{quiet_container.id}/logs/?follow=1",
             {"Authorization": f"Token {token}"})
    assert _served_again(url) < 5


def test_an_abandoned_wait_frees_its_thread(serve, token: str, quiet_container: Container) -> None:  # type: ignore[no-untyped-def]
    url = serve()
    _abandon(url, "POST", f"/docker/v1.47/containers/{quiet_container.id}/wait", {"Authorization": f"Token {token}"})
    assert _served_again(url) < 5
    _abandon(url, "POST", f"/api/v1/containers/{quiet_container.id}/wait/", {"Authorization": f"Token {token}"})
    assert _served_again(url) < 5


def test_a_silent_stream_ends_after_the_idle_limit(serve, token: str, quiet_container: Container) -> None:  # type: ignore[no-untyped-def]
    import docker

    url = serve(STREAM_IDLE_TIMEOUT="3", STREAM_KEEPALIVE="1")
    api = docker.APIClient(base_url=f"tcp://{url.split('://')[1]}/docker", version="1.47", timeout=15)
    api.headers["Authorization"] = f"Token {token}"
    started = time.monotonic()
    # The Docker SDK reads the keep-alive spaces of a silent pull and the closing message.
    messages = _within(15, lambda: list(api.pull("centos", tag="6.6", stream=True, decode=True)))
    assert 3 <= time.monotonic() - started < 10
    job = Job.objects.get()
    assert messages == [{"errorDetail": {"message": messages[0]["error"]}, "error": messages[0]["error"]}]
    assert f"no progress for 3 s; job {job.id} goes on in the background" in messages[0]["error"]
    started = time.monotonic()
    assert _within(15, lambda: api.logs(quiet_container.id, follow=True, stream=False)) == b""  # Docker API
    assert 3 <= time.monotonic() - started < 10
    response = requests.get(f"{url}/api/v1/containers/{quiet_container.id}/logs/?follow=1",
                            headers={"Authorization": f"Token {token}"}, timeout=15)  # REST
    assert response.status_code == 200 and response.content == b""


def test_docker_wait_answers_after_keepalives_when_the_container_exits(serve, token: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """As moby: headers at once, the JSON body when the container has exited."""
    import docker

    require_tool("runc")
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    import_image(io.BytesIO(tar_directory(rootfs, "gzip")), repository="busybox:static")
    container = service.create_container("busybox:static", cmd=["sh", "-c", "sleep 3; exit 3"])
    service.start_container(container)
    url = serve(STREAM_KEEPALIVE="1", STREAM_IDLE_TIMEOUT="1")  # wait is not bounded by the idle limit
    api = docker.APIClient(base_url=f"tcp://{url.split('://')[1]}/docker", version="1.47", timeout=20)
    api.headers["Authorization"] = f"Token {token}"
    assert api.wait(container.id) == {"StatusCode": 3, "Error": None}
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # headers come before the exit
        container = service.start_container(Container.objects.get(pk=container.pk))
        sock.sendall(f"POST /docker/v1.47/containers/{container.id}/wait HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Authorization: Token {token}\r\nContent-Length: 0\r\n\r\n".encode())
        sent = time.monotonic()
        head = sock.recv(4096)
        assert time.monotonic() - sent < 1.5  # the headers come before the container exits (3 s)
        assert head.startswith(b"HTTP/1.1 200 ") and b"application/json" in head, head
        head, _, body = head.partition(b"\r\n\r\n")
        while not body.endswith(b"\r\n0\r\n\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            body += chunk
    payload = b"".join(part for part in body.split(b"\r\n")[1::2])  # the chunks' data
    assert json.loads(payload) == {"StatusCode": 3, "Error": None} and payload.startswith(b" ")
