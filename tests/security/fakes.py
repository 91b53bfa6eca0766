"""Small real HTTP servers on loopback that play a hostile registry or target, and record every
connection they accept (so a test can prove none was made)."""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Route = Callable[["Handler"], None]


@dataclass
class Recorded:
    path: str
    method: str
    headers: dict[str, str]


@dataclass
class FakeServer:
    server: http.server.ThreadingHTTPServer
    routes: dict[str, Route] = field(default_factory=dict)
    connections: int = 0
    requests: list[Recorded] = field(default_factory=list)
    sent: int = 0  # body bytes written by streaming routes

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"


class Handler(http.server.BaseHTTPRequestHandler):
    fake: FakeServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.fake.requests.append(Recorded(self.path, self.command, headers))
        path = self.path.split("?", 1)[0]
        route = self.fake.routes.get(path) or self.fake.routes.get("*")
        if route is None:
            self.reply(404, b'{"errors": [{"code": "NOT_FOUND", "message": "not here"}]}')
            return
        route(self)

    do_GET = do_HEAD = do_POST = do_PUT = _serve  # noqa: N815

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@contextmanager
def fake_server(routes: dict[str, Route] | None = None) -> Iterator[FakeServer]:
    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def verify_request(self, request: Any, client_address: Any) -> bool:
            fake.connections += 1
            return True

        def handle_error(self, request: Any, client_address: Any) -> None:
            return  # a client hanging up mid-body is what some tests want

    server = Server(("127.0.0.1", 0), type("BoundHandler", (Handler,), {}))
    fake = FakeServer(server, dict(routes or {}))
    server.RequestHandlerClass.fake = fake  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def challenge(realm: str) -> Route:
    """``/v2/`` and everything else: 401 with a bearer challenge naming ``realm``."""

    def route(h: Handler) -> None:
        h.reply(401, b'{"errors": [{"code": "UNAUTHORIZED"}]}',
                {"WWW-Authenticate": f'Bearer realm="{realm}",service="fake",scope="repository:x:pull"',
                 "Content-Type": "application/json"})

    return route


def redirect(location: str, status: int = 307) -> Route:
    return lambda h: h.reply(status, b"", {"Location": location})


def body(data: bytes, content_type: str = "application/json", status: int = 200) -> Route:
    return lambda h: h.reply(status, data, {"Content-Type": content_type})


def endless(declared: int, extra: int, fake_ref: list[FakeServer]) -> Route:
    """A body ``extra`` bytes longer than ``declared`` (no Content-Length, the connection closes)."""

    def route(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        chunk = b"\0" * 65536
        remaining = declared + extra
        try:
            while remaining > 0:
                piece = chunk[: min(len(chunk), remaining)]
                h.wfile.write(piece)
                fake_ref[0].sent += len(piece)
                remaining -= len(piece)
        except OSError:
            pass  # the client hung up: what we want
        h.close_connection = True

    return route


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_for(config: bytes, layers: list[tuple[str, int]]) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}
                   for digest, size in layers],
    }).encode()


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
