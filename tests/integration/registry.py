"""Debian's docker-registry (the reference registry server) on a loopback port, for tests.

With ``auth="htpasswd"`` it asks for basic auth; with ``auth="token"`` it trusts a small
token issuer run here (Docker's token spec: an RS256 JWT with an x5c header signed by a
key whose certificate is the registry's root bundle).
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def require_tool(name: str) -> str:
    """A peer tool the tests need: missing is a failure, never a skip (make test installs it).
    (Not tests.conftest's: this module is also used by bench/, outside pytest.)"""
    import shutil

    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        raise AssertionError(f"{name} is not installed; `make test` installs it (scripts/install-system-deps.sh)")
    return path

USERS = {"alice": "wonderland"}


def allow_outbound(address: str) -> None:
    """Let the store connect to a loopback test peer (``127.0.0.1:PORT``): the outbound policy
    refuses loopback unless OUTBOUND_ALLOW names it. Set in Django's settings (restored after the
    test by the ``outbound_allow`` fixture) and in the environment, for workers and servers the test
    starts afterwards."""
    import os

    from django.conf import settings

    if settings.configured:
        settings.OUTBOUND_ALLOW = [*getattr(settings, "OUTBOUND_ALLOW", []), address]
    allowed = [a for a in os.environ.get("OUTBOUND_ALLOW", "").split(",") if a]
    os.environ["OUTBOUND_ALLOW"] = ",".join([*allowed, address])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """Hands out registry tokens: pull for anyone, pull+push for USERS."""

    def __init__(self, workdir: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-issuer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(self.key, hashes.SHA256())
        )
        self.cert_path = workdir / "token-cert.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict[str, Any]] = []
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                account = issuer.check_basic(self.headers.get("Authorization", ""))
                if account is False:
                    self.send_response(401)
                    self.end_headers()
                    return
                scopes = [s for value in query.get("scope", []) for s in value.split(" ")]
                issuer.requests.append({"account": account, "scopes": scopes})
                token = issuer.token(account if isinstance(account, str) else None, query.get("service", [""])[0], scopes)
                body = json.dumps({"token": token, "access_token": token}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        allow_outbound(f"127.0.0.1:{self.server.server_address[1]}")

    @staticmethod
    def check_basic(header: str) -> str | None | bool:
        if not header:
            return None
        try:
            user, _, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
        except (ValueError, IndexError):
            return False
        return user if USERS.get(user) == password else False

    def token(self, account: str | None, service: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) != 3:
                continue
            kind, name, actions = parts
            wanted = actions.split(",")
            allowed = [a for a in wanted if a == "pull" or (account and a in ("push", "*"))]
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": "test-issuer", "sub": account or "", "aud": service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Registry:
    process: subprocess.Popen[bytes]
    host: str  # 127.0.0.1:PORT
    workdir: Path
    issuer: TokenIssuer | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if self.issuer:
            self.issuer.stop()


def start_registry(workdir: Path, auth: str | None = None) -> Registry:
    binary = require_tool("docker-registry")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "test-secret"},
    }
    issuer = None
    if auth == "htpasswd":
        lines = [f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}" for u, p in USERS.items()]
        (workdir / "htpasswd").write_text("\n".join(lines) + "\n")
        config["auth"] = {"htpasswd": {"realm": "test-realm", "path": str(workdir / "htpasswd")}}
    elif auth == "token":
        issuer = TokenIssuer(workdir)
        config["auth"] = {"token": {"realm": issuer.realm, "service": "test-registry", "issuer": "test-issuer",
                                    "rootcertbundle": str(issuer.cert_path)}}
    (workdir / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    log = open(workdir / "registry.log", "wb")  # noqa: SIM115 - kept open for the process
    process = subprocess.Popen([binary, "serve", str(workdir / "config.yml")], stdout=log, stderr=log)
    registry = Registry(process, f"127.0.0.1:{port}", workdir, issuer)
    allow_outbound(registry.host)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{registry.url}/v2/", timeout=1).status_code in (200, 401):
                return registry
        except requests.RequestException:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    registry.stop()
    raise AssertionError(f"docker-registry did not start:\n{(workdir / 'registry.log').read_text()}")


def skopeo_copy(source: str, destination: str, *extra: str, creds: str | None = None) -> None:
    skopeo = require_tool("skopeo")
    args = [skopeo, "copy", "-q", "--dest-tls-verify=false", *extra]
    if creds:
        args += ["--dest-creds", creds]
    subprocess.run([*args, source, destination], check=True, capture_output=True)


def skopeo_inspect(reference: str, *extra: str, creds: str | None = None) -> bytes:
    skopeo = require_tool("skopeo")
    args = [skopeo, "inspect", "--tls-verify=false", *extra]
    if creds:
        args += ["--creds", creds]
    return subprocess.run([*args, reference], check=True, capture_output=True).stdout


def build_busybox_layout(workdir: Path, tag: str = "busybox", marker: str = "") -> Path:
    """An OCI layout holding a busybox-static image, built by umoci (not by our code)."""
    from tests.builders import busybox_rootfs

    umoci = require_tool("umoci")
    layout = workdir / "layout"
    bundle = workdir / f"bundle-{tag}"
    if not layout.exists():
        subprocess.run([umoci, "init", "--layout", str(layout)], check=True, capture_output=True)
    subprocess.run([umoci, "new", "--image", f"{layout}:{tag}"], check=True, capture_output=True)
    subprocess.run([umoci, "unpack", "--image", f"{layout}:{tag}", str(bundle)], check=True, capture_output=True)
    busybox_rootfs(bundle / "rootfs")
    if marker:
        (bundle / "rootfs" / "etc" / "marker").write_text(marker)
    subprocess.run([umoci, "repack", "--image", f"{layout}:{tag}", str(bundle)], check=True, capture_output=True)
    subprocess.run([umoci, "config", "--image", f"{layout}:{tag}", "--config.cmd", "/bin/sh"], check=True,
                   capture_output=True)
    return layout


class RegistryProxy:
    """A loopback HTTP/1.1 proxy in front of a registry (``upstream`` is its host:port), allowed by
    the outbound policy; subclasses say how each GET and HEAD is answered (``forward``)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                proxy.forward(self, "GET")

            def do_HEAD(self) -> None:  # noqa: N802
                proxy.forward(self, "HEAD")

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        allow_outbound(self.host)

    def forward(self, handler: http.server.BaseHTTPRequestHandler, method: str) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
