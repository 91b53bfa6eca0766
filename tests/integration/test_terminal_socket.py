"""The browser terminal's WebSocket against a real gunicorn (socket hand-over) and runc:
an operator gets a shell whose output comes back, resizes reach its terminal, its exit
code is reported, and closing the socket ends the shell but not the container."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from simple_websocket import ConnectionClosed

from imagestore.models import Container
from imagestore.services import containers as service
from tests.integration.terminals import (  # noqa: F401 - fixtures
    Dashboard,
    close,
    connect,
    dashboard_fixture,
    read_until,
    running_container_fixture,
    session_cookie,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _shells(container: Container) -> set[int]:
    """Host pids of the shells running in the container (everything but its own sleep)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            cgroup = Path(f"/proc/{entry}/cgroup").read_text()
        except OSError:
            continue
        if container.id in cgroup and not cmdline.startswith(b"sleep"):
            pids.add(int(entry))
    return pids


def test_an_operator_gets_a_shell_whose_output_comes_back(dashboard: Dashboard, running_container: Container,
                                                          operator: User) -> None:
    started = time.monotonic()
    ws = connect(dashboard, running_container, session_cookie(operator))
    try:
        read_until(ws, b"# ")  # the prompt
        first_prompt = time.monotonic() - started
        ws.send(b"echo $((6*7))\n")
        seen, _ = read_until(ws, b"42\r\n")
        if b"# " not in seen.split(b"42\r\n", 1)[1]:
            read_until(ws, b"# ")  # the next prompt
        # A keystroke's round trip: typed, echoed by the shell's terminal, back in the browser.
        trips = []
        for letter in b"abcdefghijklmnopqrst":
            sent = time.monotonic()
            ws.send(bytes([letter]))
            read_until(ws, bytes([letter]))
            trips.append(time.monotonic() - sent)
        ws.send(b"\x15")  # ctrl-u: the line typed is dropped
        ws.send('{"resize": [33, 111]}')
        ws.send(b"stty size\n")
        read_until(ws, b"33 111")
        ws.send(b"exit 7\n")
        messages = []
        while True:
            try:
                message = ws.receive(timeout=10)
            except ConnectionClosed:
                break  # every message before the close was received
            if message is None:
                break  # 10 s of silence: the assertion below says what came
            messages.append(message)
        assert messages[-1] == '{"exit": 7}'  # then the server closed the socket
    finally:
        close(ws)
    trips.sort()
    print(f"time to first prompt: {first_prompt:.3f} s; keystroke echo median {trips[len(trips) // 2] * 1000:.1f} ms,"
          f" max {trips[-1] * 1000:.1f} ms")


def test_closing_the_socket_ends_the_shell_not_the_container(dashboard: Dashboard, running_container: Container,
                                                             operator: User, tmp_path: Path) -> None:
    before = _shells(running_container)
    ws = connect(dashboard, running_container, session_cookie(operator))
    read_until(ws, b"# ")
    ws.send(b"echo ready\n")
    read_until(ws, b"ready\r\n")
    shells = _shells(running_container) - before
    assert shells, "the shell runs in the container's cgroup"
    ws.close()
    deadline = time.monotonic() + 10
    while _shells(running_container) & shells and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _shells(running_container) & shells, "the shell ended with its socket"
    running_container.refresh_from_db()
    assert service.reconcile(running_container).state == "running"
    audit_log = tmp_path / f"gunicorn-{dashboard.url.rsplit(':', 1)[1]}.log"
    deadline = time.monotonic() + 10
    while "terminal closed: exec by olive" not in audit_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    audit = audit_log.read_text()
    assert f"terminal opened: exec by olive on container {running_container.id[:12]}" in audit
    assert "terminal closed: exec by olive" in audit
    # And the next terminal still opens: the server's thread was given back.
    ws = connect(dashboard, running_container, session_cookie(operator))
    try:
        read_until(ws, b"# ")
    finally:
        close(ws)


def _gunicorn_workers(port: str) -> list[int]:
    """pids of the gunicorn workers serving ``port`` (children of its master)."""
    masters, processes = set(), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        # start_gunicorn gives the port in the environment (scripts/gunicorn.conf.py binds to it).
        if b"gunicorn" in cmdline and f"PORT={port}".encode() in environ:
            processes[int(entry.name)] = parent
    masters = {pid for pid, parent in processes.items() if parent not in processes}
    return [pid for pid, parent in processes.items() if parent in masters]


def test_a_killed_web_process_leaves_no_shell_behind(dashboard: Dashboard, running_container: Container,
                                                     operator: User) -> None:
    """gunicorn kills a stuck worker (SIGKILL): the shells it served end with it."""
    import signal

    before = _shells(running_container)
    ws = connect(dashboard, running_container, session_cookie(operator))
    read_until(ws, b"# ")
    shells = _shells(running_container) - before
    workers = _gunicorn_workers(dashboard.url.rsplit(":", 1)[1])
    assert shells and len(workers) == 1
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _shells(running_container) & shells and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _shells(running_container) & shells
