"""The guard every long answer uses: the client's socket at end-of-file, the idle limit."""

from __future__ import annotations

import socket
import time
from types import SimpleNamespace

import pytest

from imagestore import streams
from imagestore.errors import BadRequest
from imagestore.querystring import seconds


def test_a_closed_or_reset_peer_is_gone_waiting_bytes_are_not() -> None:
    server, client = socket.socketpair()
    with server, client:
        assert not streams.socket_closed(server)  # open and quiet
        client.sendall(b"GET / HTTP/1.1\r\n")  # a pipelined request: someone is there
        assert not streams.socket_closed(server)
        assert server.recv(100) == b"GET / HTTP/1.1\r\n"  # the peek consumed nothing
        client.close()
        assert streams.socket_closed(server)


def test_guard_finds_gunicorns_socket_and_djangos_and_checks_at_most_once_a_second(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server, client = socket.socketpair()
    with server, client:
        assert streams.request_socket(SimpleNamespace(META={"gunicorn.socket": server})) is server
        wrapped = SimpleNamespace(stream=SimpleNamespace(raw=SimpleNamespace(_sock=server)))  # LimitedStream(rfile)
        assert streams.request_socket(SimpleNamespace(META={"wsgi.input": wrapped})) is server
        assert streams.request_socket(SimpleNamespace(META={})) is None
        guard = streams.StreamGuard(SimpleNamespace(META={"gunicorn.socket": server}), idle_timeout=0, keepalive=0)
        client.close()
        assert not guard.client_gone()  # not polled yet
        now = time.monotonic()
        monkeypatch.setattr(streams.time, "monotonic", lambda: now + streams.CHECK_INTERVAL + 0.1)
        assert guard.client_gone() and not guard.go_on() and not guard.listening()


def test_idle_limit_and_keepalive_clocks(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = [1000.0]
    monkeypatch.setattr(streams.time, "monotonic", lambda: clock[0])
    guard = streams.StreamGuard(SimpleNamespace(META={}), idle_timeout=300, keepalive=15)
    clock[0] += 16
    assert guard.keepalive_due() and not guard.idle()
    guard.wrote()  # a keep-alive is not output
    clock[0] += 290
    assert guard.idle() and not guard.go_on() and guard.listening()  # wait has no idle limit
    guard.output()
    assert not guard.idle() and not guard.keepalive_due()
    assert not streams.StreamGuard(SimpleNamespace(META={}), idle_timeout=0).idle()  # 0: no limit


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "Infinity", "-1", "1e3", "3601", "1" * 400, "10s",
                                 "0x10", "１０", "", " "])
def test_a_timeout_is_a_plain_bounded_number_of_seconds(raw: str) -> None:
    if not raw.strip():
        assert seconds({"t": raw}, "t", default=10, maximum=3600) == 10
        return
    with pytest.raises(BadRequest, match="t must be a number of seconds from 0 to 3600"):
        seconds({"t": raw}, "t", default=10, maximum=3600)


def test_good_timeouts() -> None:
    assert seconds({}, "t", default=10, maximum=3600) == 10
    assert seconds({"t": "0"}, "t", default=10, maximum=3600) == 0
    assert seconds({"t": "2.5"}, "t", default=10, maximum=3600) == 2.5
    assert seconds({"t": "3600"}, "t", default=10, maximum=3600) == 3600
