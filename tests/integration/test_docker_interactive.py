"""The real docker CLI, interactively, under a real pseudo-terminal, against a live gunicorn and
worker: ``docker run -i -t``, ``--rm``, exit codes, ``exec -it``, ``attach``, ``start -a -i``;
and the Docker SDK for Python's ``run(tty=True, detach=True)``, ``exec_run`` and ``attach_socket``."""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import tarfile
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from imagestore.blobs import get_store
from imagestore.services.images import resolve_image
from imagestore.services.tokens import create_token
from tests.builders import busybox_rootfs, tar_directory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class Terminal:
    """A command on a fresh pseudo-terminal, as a person at a terminal runs it."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 24, cols: int = 80) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                        start_new_session=True)
        os.close(slave)
        self.output = b""

    def read_until(self, needle: bytes, timeout: float = 30) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.output and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: the command has ended
                    break
                if not data:
                    break
                self.output += data
        assert needle in self.output, f"{needle!r} not seen in {self.output!r}"
        return self.output

    def type(self, text: bytes) -> None:
        os.write(self.master, text)

    def wait(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:
                    pass
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise AssertionError(f"still running after {timeout} s: {self.output!r}")
        os.close(self.master)
        return self.process.returncode


@pytest.fixture
def cli(start_dashboard, operator, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The docker CLI pointed at a live dashboard, with an image ``centos:6.6`` (and ``centos``)
    built from busybox whose ``/bin/bash`` is a real executable (a script starting busybox sh)."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker CLI client is not on this machine")
    url = start_dashboard()
    _, token_key = create_token(operator, name="docker interactive test")
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"HttpHeaders": {"Authorization": f"Token {token_key}"}}))
    env = {**os.environ, "DOCKER_CONFIG": str(config), "DOCKER_HOST": f"tcp://{url.split('://')[1]}/docker",
           "TERM": "xterm"}

    def run(*args: str, stdin: bytes | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        raw = subprocess.run([docker, *args], env=env, input=stdin, capture_output=True, timeout=120)
        result = subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode())
        if ok:
            assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def terminal(*args: str) -> Terminal:
        return Terminal([docker, *args], env)

    rootfs = busybox_rootfs(tmp_path / "rootfs")
    for applet in ("stty", "ps"):
        os.symlink("busybox", rootfs / "bin" / applet)
    (rootfs / "bin" / "bash").write_text('#!/bin/sh\nexec /bin/sh "$@"\n')
    (rootfs / "bin" / "bash").chmod(0o755)
    run("import", "--change", 'CMD ["/bin/sh"]', "-", "centos:6.6", stdin=tar_directory(rootfs, "gzip"))
    run("tag", "centos:6.6", "centos")
    run.terminal = terminal  # type: ignore[attr-defined]
    run.url = url  # type: ignore[attr-defined]
    run.token = token_key  # type: ignore[attr-defined]
    return run


def _top_layer_names(reference: str) -> list[str]:
    image = resolve_image(reference)
    last = image.image_layers.select_related("layer").order_by("-position").first()
    assert last is not None
    with get_store().open(last.layer.digest) as blob, tarfile.open(fileobj=blob, mode="r:*") as tar:
        return tar.getnames()


def test_docker_run_it_touch_exit_then_commit_word_for_word(cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    shell = cli.terminal("run", "-i", "-t", "centos:6.6", "/bin/bash")  # type: ignore[attr-defined]
    shell.read_until(b"# ")
    shell.type(b"touch test\r")
    shell.type(b"echo typed $((6*7))\r")
    shell.read_until(b"typed 42")
    shell.type(b"exit\r")
    assert shell.wait() == 0
    container_id = cli("ps", "-a", "-q", "--no-trunc").stdout.split()[0]
    committed = cli("commit", "-m", "added a new file", "-a", "Docker cxp", container_id, "test").stdout.strip()
    assert committed.startswith("sha256:")
    assert _top_layer_names("test") == ["test"]
    assert json.loads(cli("inspect", "test").stdout)[0]["Comment"] == "added a new file"


def test_docker_run_rm_echo_hi_and_exit_codes(cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    hi = cli("run", "--rm", "centos", "echo", "hi")
    assert hi.returncode == 0 and hi.stdout == "hi\n"
    assert cli("ps", "-a", "-q").stdout.strip() == ""  # --rm removed it
    three = cli("run", "centos", "sh", "-c", "exit 3", ok=False)
    assert three.returncode == 3, three.stderr
    both = cli("run", "centos", "sh", "-c", "echo out; echo err >&2")
    assert both.stdout == "out\n" and both.stderr == "err\n"
    piped = cli("run", "-i", "--rm", "centos", "cat", stdin=b"through stdin\n")
    assert piped.stdout == "through stdin\n"
    named = cli("run", "--name", "named", "-e", "GREETING=hello", "-w", "/tmp", "-u", "0:0", "--entrypoint",
                "sh", "centos", "-c", 'echo "$GREETING from $(pwd) as $(id -u)"')
    assert named.stdout == "hello from /tmp as 0\n"
    assert cli("logs", "named").stdout == "hello from /tmp as 0\n"


def test_docker_exec_it_attach_start_restart_rename_top(cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    cli("run", "-d", "-i", "-t", "--name", "box", "centos", "sh")
    execed = cli.terminal("exec", "-it", "box", "sh")  # type: ignore[attr-defined]
    execed.read_until(b"# ")
    execed.type(b"stty size; echo exec $((6*7))\r")
    execed.read_until(b"exec 42")
    assert b"24 80" in execed.output
    execed.type(b"exit 4\r")
    assert execed.wait() == 4
    assert cli("exec", "box", "echo", "plain").stdout == "plain\n"

    attached = cli.terminal("attach", "box")  # type: ignore[attr-defined]
    time.sleep(0.5)
    attached.type(b"echo attached $((6*7))\r")
    attached.read_until(b"attached 42")
    # (ctrl-p ctrl-q: the CLI itself spots them and half-closes, then waits for the container
    # to stop -- docker/cli#3385 over TCP; the server side of detaching is tested below.)
    attached.type(b"exit 5\r")
    assert attached.wait() == 5
    assert cli("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", "box").stdout.strip() == "false 5"
    cli("start", "box")
    assert "sh" in cli("top", "box").stdout
    cli("rename", "box", "renamed")
    cli("restart", "-t", "1", "renamed")
    assert cli("inspect", "-f", "{{.State.Running}}", "renamed").stdout.strip() == "true"
    cli("rm", "-f", "renamed")

    cli("create", "-i", "-t", "--name", "later", "centos", "sh")
    started = cli.terminal("start", "-a", "-i", "later")  # type: ignore[attr-defined]
    started.read_until(b"# ")
    started.type(b"exit 6\r")
    assert started.wait() == 6


def test_docker_sdk_tty_run_exec_run_and_attach_socket(cli) -> None:  # type: ignore[no-untyped-def]
    import docker as docker_sdk

    client = docker_sdk.DockerClient(base_url=f"tcp://{cli.url.split('://')[1]}/docker", version="1.47")
    client.api.headers["Authorization"] = f"Token {cli.token}"
    container = client.containers.run("centos", "sh", tty=True, stdin_open=True, detach=True)
    assert container.status in ("created", "running")
    code, output = container.exec_run(["sh", "-c", "echo sdk $((6*7))"])
    assert code == 0 and output == b"sdk 42\n"
    code, output = container.exec_run("sh -c 'exit 2'")
    assert code == 2
    sock = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    raw = sock._sock
    raw.sendall(b"echo socket $((6*7))\r")
    seen = b""
    deadline = time.monotonic() + 15
    while b"socket 42" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([raw], [], [], 0.5)
        if ready:
            seen += raw.recv(65536)
    assert b"socket 42" in seen
    raw.sendall(b"\x10\x11")  # ctrl-p ctrl-q: the server ends this attach, the container goes on
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and raw.recv(65536):
        pass
    sock.close()
    container.reload()
    assert container.status == "running"
    again = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stream": 1})
    again._sock.sendall(b"exit 9\r")
    assert container.wait(timeout=30)["StatusCode"] == 9
    again.close()
    plain = client.containers.run("centos", ["sh", "-c", "echo plain run"], remove=True)
    assert plain == b"plain run\n"


def test_attach_over_a_websocket(cli) -> None:  # type: ignore[no-untyped-def]
    """``GET /containers/{id}/attach/ws``: stdin as messages, the output back as messages."""
    from simple_websocket import Client

    cli("run", "-d", "-i", "-t", "--name", "wsbox", "centos", "sh")
    url = cli.url.replace("http://", "ws://") + "/docker/v1.47/containers/wsbox/attach/ws?stream=1&stdin=1&stdout=1"
    ws = Client.connect(url, headers={"Authorization": f"Token {cli.token}"})
    try:
        ws.send(b"echo ws $((6*7))\r")
        seen = b""
        deadline = time.monotonic() + 15
        while b"ws 42" not in seen and time.monotonic() < deadline:
            message = ws.receive(timeout=1)
            if message is not None:
                seen += message if isinstance(message, bytes) else message.encode()
        assert b"ws 42" in seen
    finally:
        ws.close()
    cli("rm", "-f", "wsbox")


def test_the_upgrade_is_answered_101_then_frames_and_nothing_after(cli) -> None:  # type: ignore[no-untyped-def]
    """The raw protocol: ``101 UPGRADED`` with the multiplexed content type, Docker's 8-byte
    frames (stdout 1, stderr 2), and nothing of gunicorn's own written after the stream."""
    import socket

    container_id = cli("create", "centos", "sh", "-c", "echo out; echo err >&2").stdout.strip()
    port = int(cli.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(f"POST /docker/v1.47/containers/{container_id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n"
                     f"Host: 127.0.0.1\r\nAuthorization: Token {cli.token}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                     f"Content-Length: 0\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101 UPGRADED\r\n"), head
        assert b"Content-Type: application/vnd.docker.multiplexed-stream" in head
        cli("start", container_id)
        body = b""
        while chunk := sock.recv(65536):
            body += chunk
    assert body == b"\x01\0\0\0\0\0\0\x04out\n\x02\0\0\0\0\0\0\x04err\n" or body == (
        b"\x02\0\0\0\0\0\0\x04err\n\x01\0\0\0\0\0\0\x04out\n"), body
