"""The engine's attach, terminal and exec services with the real runc: a supervisor owning the
process and its pseudo-terminal, any number of attached clients, resize, detach keys, exit codes."""

from __future__ import annotations

import time

import pytest

from imagestore.models import Container, Image
from imagestore.services import containers as service
from imagestore.services.containers.attach import attach, parse_detach_keys, resize
from imagestore.services.containers.exec import attach_exec, create_exec, exec_inspect, start_exec

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _attach_then_start(container: Container, **streams: bool):  # type: ignore[no-untyped-def]
    """Attach before the start, as ``docker run`` does: the attach waits for the start."""
    import threading

    got = []
    waiting = threading.Thread(target=lambda: got.append(attach(container, timeout=30, **streams)))
    waiting.start()
    time.sleep(0.2)
    service.start_container(container)
    waiting.join()
    return got[0]


def _read_until(stream, needle: bytes, timeout: float = 10) -> bytes:  # type: ignore[no-untyped-def]
    import select

    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.2)
        if ready:
            frames = stream.read()
            if frames is None:
                break
            seen += b"".join(data for _, data in frames)
    return seen


def test_output_before_the_attach_connects_is_not_lost_and_streams_are_kept_apart(busybox: Image) -> None:
    container = service.create_container("busybox:static", cmd=["sh", "-c", "echo out; echo err >&2; exit 3"])
    stream = _attach_then_start(container, stdout=True, stderr=True)
    frames = list(stream.frames())
    assert (1, b"out\n") in frames and (2, b"err\n") in frames
    assert service.wait_for(container, "not-running") == 3
    assert list(service.container_log_frames(container)) == frames or sorted(frames) == sorted(
        service.container_log_frames(container))


def test_stdin_once_closes_the_process_input_when_the_client_half_closes(busybox: Image) -> None:
    container = service.create_container("busybox:static", cmd=["cat"], open_stdin=True, stdin_once=True)
    stream = _attach_then_start(container, stdin=True)
    stream.send(b"hello through a pipe\n")
    stream.close_stdin()
    assert b"".join(data for _, data in stream.frames()) == b"hello through a pipe\n"
    assert service.wait_for(container, "not-running") == 0


def test_a_terminal_echoes_input_resizes_and_two_clients_see_the_same_output(busybox: Image) -> None:
    container = service.create_container("busybox:static", cmd=["sh"], tty=True, open_stdin=True,
                                         console_size=[30, 100])
    service.start_container(container)
    first = attach(container, stdin=True)
    second = attach(container)
    first.send(b"stty size; echo $((6*7))\r")
    assert b"30 100" in _read_until(first, b"42")
    assert b"42" in _read_until(second, b"42")
    resize(container, 40, 120)
    first.send(b"stty size\r")
    assert b"40 120" in _read_until(first, b"40 120")
    # ctrl-p ctrl-q detaches this client only: the shell goes on
    first.send(parse_detach_keys(None))
    assert _read_until(first, b"never", timeout=3) == b"" or first.read() is None
    container.refresh_from_db()
    assert container.state == "running"
    third = attach(container, stdin=True)
    third.send(b"exit 5\r")
    list(third.frames())
    assert service.wait_for(container, "not-running") == 5
    assert b"42" in b"".join(service.container_logs(container))


def test_exec_with_and_without_a_terminal(busybox: Image) -> None:
    container = service.create_container("busybox:static", cmd=["sleep", "60"])
    service.start_container(container)
    plain = create_exec(container, ["sh", "-c", "echo from exec; exit 4"])
    start_exec(plain)
    with attach_exec(plain) as stream:
        assert b"".join(data for _, data in stream.frames()) == b"from exec\n"
    deadline = time.monotonic() + 10
    while exec_inspect(plain)["Running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert exec_inspect(plain)["ExitCode"] == 4
    shell = create_exec(container, ["sh"], tty=True, stdin=True)
    start_exec(shell, console_size=[24, 80])
    with attach_exec(shell, stdin=True) as stream:
        stream.send(b"echo $((6*7)); exit\r")
        assert b"42" in b"".join(data for _, data in stream.frames())
    assert exec_inspect(shell)["ExitCode"] == 0
    service.remove_container(container, force=True)
    assert not Container.objects.filter(pk=container.pk).exists()


def test_auto_remove_keeps_the_exit_code_for_a_removed_wait(busybox: Image) -> None:
    container = service.create_container("busybox:static", cmd=["sh", "-c", "exit 7"], auto_remove=True)
    service.start_container(container)
    assert service.wait_for(container, "removed") == 7
    assert not Container.objects.filter(pk=container.pk).exists()
