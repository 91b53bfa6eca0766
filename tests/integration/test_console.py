"""The browser terminal's sessions over the engine's exec and attach (real runc): a new shell
runs typed commands, resizes, reports its exit code, and closing it ends the shell but not
the container; attaching to a container run with a terminal shows its output from the
start, and closing that attachment leaves the container running."""

from __future__ import annotations

import select
import time
from pathlib import Path

import pytest

from imagestore.errors import Conflict
from imagestore.models import Container, Image
from imagestore.services import containers as service
from imagestore.services.containers.console import TerminalSession, attach_terminal, exec_terminal, run_container

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def running(busybox: Image) -> Container:
    container = service.start_container(service.create_container("busybox:static", cmd=["sleep", "600"]))
    assert container.state == "running"
    yield container
    service.remove_container(container, force=True)


def shells_in(container: Container) -> set[int]:
    """Host pids of the container's processes other than its own ``sleep``."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            in_container = container.id in (entry / "cgroup").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if in_container and not cmdline.startswith(b"sleep"):
            pids.add(int(entry.name))
    return pids


def read_until(terminal: TerminalSession, needle: bytes, timeout: float = 10) -> bytes:
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


def test_a_new_shell_runs_typed_commands_resizes_and_reports_its_exit_code(running: Container) -> None:
    started = time.monotonic()
    terminal = exec_terminal(running, rows=30, cols=100)
    try:
        read_until(terminal, b"# ")
        first_prompt = time.monotonic() - started
        terminal.write(b"echo $((6*7)) $TERM\r")
        read_until(terminal, b"42 xterm-256color")
        terminal.write(b"stty size\r")
        read_until(terminal, b"30 100")
        terminal.resize(40, 120)
        terminal.write(b"stty size; tty\r")
        assert b"40 120" in read_until(terminal, b"/dev/pts/")
        terminal.write(b"exit 5\r")
        while terminal.read() is not None:
            pass
        deadline = time.monotonic() + 5
        while terminal.exit_code() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert terminal.exit_code() == 5
    finally:
        terminal.close()
    print(f"new shell: first prompt after {first_prompt:.3f} s")


def test_closing_a_new_shell_ends_it_not_the_container(running: Container) -> None:
    before = shells_in(running)
    terminal = exec_terminal(running)
    read_until(terminal, b"# ")
    shells = shells_in(running) - before
    assert shells
    terminal.close()
    assert not shells_in(running) & shells
    assert terminal.exit_code() is not None
    running.refresh_from_db()
    assert service.reconcile(running).state == "running"


def test_attaching_to_a_container_run_with_a_terminal(busybox: Image) -> None:
    container = run_container("busybox:static", cmd=["sh"], tty=True, name="tty_runner")
    try:
        assert container.state == "running" and container.config["Tty"] and container.config["OpenStdin"]
        terminal = attach_terminal(container, rows=20, cols=70, logs=True)
        read_until(terminal, b"# ")  # the first prompt, written before the attach: from the log
        terminal.write(b"stty size; echo $((6*7))\r")
        assert b"20 70" in read_until(terminal, b"42")
        terminal.close()  # the browser's tab closed: the container goes on
        container.refresh_from_db()
        assert service.reconcile(container).state == "running"
        again = attach_terminal(container)
        again.write(b"exit 3\r")
        while again.read() is not None:
            pass
        assert service.wait_for(container, "not-running") == 3
        assert again.close() == 3
    finally:
        service.remove_container(container, force=True)


def test_a_stopped_container_gets_no_terminal(running: Container) -> None:
    service.stop_container(running, timeout=0)
    with pytest.raises(Conflict):
        exec_terminal(running)
    with pytest.raises(Conflict):
        attach_terminal(running)


def test_one_shell_after_another(running: Container) -> None:
    for _ in range(5):
        terminal = exec_terminal(running)
        try:
            read_until(terminal, b"# ")
            terminal.write(b"echo $((6*7))\r")
            read_until(terminal, b"42")
        finally:
            terminal.close()
