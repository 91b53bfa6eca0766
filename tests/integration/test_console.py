"""A shell on a pseudo-terminal inside a running container (runc exec with a console socket):
typed input reaches it, its output comes back, resize reaches its terminal, and closing it
ends the shell but not the container."""

from __future__ import annotations

import io
import os
import select
import time
from pathlib import Path

import pytest

from imagestore.models import Container
from imagestore.services import containers as service
from imagestore.services.containers.console import Terminal, exec_terminal
from imagestore.services.import_ import import_image
from tests.builders import busybox_rootfs, tar_directory
from tests.conftest import require_tool

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def running(tmp_path: Path) -> Container:
    require_tool("runc")
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    import_image(io.BytesIO(tar_directory(rootfs, "gzip")), repository="busybox:static")
    container = service.start_container(service.create_container("busybox:static", cmd=["sleep", "600"]))
    assert container.state == "running"
    yield container
    service.remove_container(container, force=True)


def read_until(terminal: Terminal, needle: bytes, timeout: float = 10) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not seen in {seen!r}"
        if select.select([terminal], [], [], left)[0]:
            chunk = terminal.read()
            assert chunk is not None, f"the terminal closed before {needle!r}: {seen!r}"
            seen += chunk
    return seen


def test_a_shell_on_a_terminal_runs_typed_commands_and_resizes(running: Container) -> None:
    started = time.monotonic()
    terminal = exec_terminal(running, rows=30, cols=100)
    try:
        terminal.write(b"echo $((6*7))\n")
        read_until(terminal, b"42")
        first_output = time.monotonic() - started
        terminal.write(b"stty size\n")
        read_until(terminal, b"30 100")
        terminal.resize(40, 120)
        terminal.write(b"stty size; tty\n")
        assert b"40 120" in read_until(terminal, b"/dev/pts/")
        terminal.write(b"exit 5\n")
        assert terminal.wait(10) == 5
    finally:
        terminal.close()
    print(f"first output after {first_output:.3f} s")


def test_closing_the_terminal_ends_the_shell_not_the_container(running: Container) -> None:
    terminal = exec_terminal(running)
    read_until(terminal, b"#")  # the prompt: root's shell
    pid = terminal.pid()
    assert pid is not None and os.path.exists(f"/proc/{pid}")
    terminal.close()
    assert not os.path.exists(f"/proc/{pid}") or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    assert terminal.exit_code() is not None
    running.refresh_from_db()
    assert service.reconcile(running).state == "running"


def test_a_stopped_container_gets_no_terminal(running: Container) -> None:
    service.stop_container(running, timeout=0)
    from imagestore.errors import Conflict

    with pytest.raises(Conflict):
        exec_terminal(running)
