"""Shared by the browser terminal's tests: a running busybox container, a real gunicorn
serving the dashboard, signed-in sessions, and a WebSocket client for its terminal."""

from __future__ import annotations

import base64
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from django.test import Client
from simple_websocket import Client as WebSocket

from imagestore.models import Container
from imagestore.services import containers as service
from imagestore.services.import_ import import_image
from tests.builders import busybox_rootfs, tar_directory
from tests.conftest import require_tool


@pytest.fixture(name="running_container")
def running_container_fixture(store_root: Path, tmp_path: Path) -> Iterator[Container]:
    require_tool("runc")
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    import_image(io.BytesIO(tar_directory(rootfs, "gzip")), repository="busybox:static")
    container = service.start_container(service.create_container("busybox:static", cmd=["sleep", "600"],
                                                                  name="long_sleeper"))
    assert container.state == "running"
    yield container
    service.remove_container(container, force=True)


@dataclass
class Dashboard:
    url: str

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def terminal_path(self, container: Container, mode: str = "exec") -> str:
        return f"/containers/{container.id}/terminal/?mode={mode}&rows=24&cols=80"


@pytest.fixture(name="dashboard")
def dashboard_fixture(start_dashboard: Callable[..., str]) -> Dashboard:
    return Dashboard(start_dashboard())


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def handshake(url: str, **headers: str) -> requests.Response:
    """A WebSocket opening handshake (RFC 6455 section 4.1) by hand, to read a refusal's status."""
    key = base64.b64encode(os.urandom(16)).decode()
    return requests.get(url, headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                      "Sec-WebSocket-Key": key, **headers}, timeout=30, stream=True)


class BrowserLikeWebSocket(WebSocket):
    """simple_websocket's client, with two things browsers do that it does not: the port in
    Host (RFC 6455 section 4.1, RFC 9110 section 7.2), which the Origin check compares; and
    the messages that came in the same read as the 101 answer (the shell's first prompt often
    does), which its handshake leaves in the parser until more data arrives."""

    def handshake(self) -> None:
        self.host = f"{self.host}:{self.port}"
        super().handshake()
        self._handle_events()


def connect(dashboard: Dashboard, container: Container, cookie: str, mode: str = "exec") -> WebSocket:
    return BrowserLikeWebSocket.connect(dashboard.ws_url + dashboard.terminal_path(container, mode),
                             headers={"Cookie": cookie, "Origin": dashboard.url})


def close(ws: WebSocket) -> None:
    if ws.connected:
        ws.close()


def read_until(ws: WebSocket, needle: bytes, timeout: float = 15) -> tuple[bytes, list[Any]]:
    """Output until ``needle``; the control messages seen on the way."""
    seen = b""
    controls: list[Any] = []
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not seen in {seen!r}"
        message = ws.receive(timeout=left)
        if isinstance(message, bytes):
            seen += message
        elif message is not None:
            controls.append(json.loads(message))
    return seen, controls
