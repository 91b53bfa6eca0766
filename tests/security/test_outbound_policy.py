"""The outbound policy on its own (imagestore.oci.outbound): what it lets the server connect to."""

from __future__ import annotations

import ipaddress

import pytest
import requests

from imagestore.oci.outbound import AllowEntry, OutboundPolicy, OutboundRefused, classify
from tests.security.fakes import body, fake_server, redirect, unused_port

ip = ipaddress.ip_address


@pytest.mark.parametrize("address", [
    "169.254.169.254", "169.254.170.2", "100.100.100.200", "168.63.129.16", "192.0.0.192", "fd00:ec2::254",
    "fd20:ce::254", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1",
])
def test_metadata_addresses_are_never_reached_even_when_everything_is_allowed(address: str) -> None:
    policy = OutboundPolicy(["0.0.0.0/0", "::/0", address, f"[{address}]:80" if ":" in address else f"{address}:80"])
    assert classify(ip(address)) == "metadata"
    assert "cloud metadata" in (policy.refusal("x", 80, ip(address)) or "")
    with pytest.raises(OutboundRefused, match="cloud metadata"):
        policy.check_url(f"http://{address if ':' not in address else f'[{address}]'}/latest/meta-data/")


def test_metadata_names_are_refused_before_any_lookup() -> None:
    with pytest.raises(OutboundRefused, match="metadata.google.internal is a cloud metadata service"):
        OutboundPolicy(["metadata.google.internal"]).check_url("http://metadata.google.internal/computeMetadata/v1/")


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fc00::1", "private"),
    ("fd12:3456::1", "private"), ("100.64.0.1", "non-public"), ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"), ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("224.0.0.1", "multicast"),
    ("8.8.8.8", None), ("2606:4700::1111", None),
])
def test_addresses_are_classified(address: str, kind: str | None) -> None:
    assert classify(ip(address)) == kind


def test_private_addresses_need_the_allow_list_and_public_ones_do_not() -> None:
    policy = OutboundPolicy()
    assert "loopback" in (policy.refusal("127.0.0.1", 5000, ip("127.0.0.1")) or "")
    assert "OUTBOUND_ALLOW" in (policy.refusal("10.0.0.1", 80, ip("10.0.0.1")) or "")
    assert policy.refusal("example.com", 443, ip("93.184.216.34")) is None


def test_cidr_entries_match_their_network_on_any_port() -> None:
    policy = OutboundPolicy(["10.0.0.0/8", "fd00::/8"])
    assert policy.refusal("a", 1, ip("10.200.0.1")) is None
    assert policy.refusal("a", 1, ip("fd12::1")) is None
    assert policy.refusal("a", 1, ip("192.168.0.1")) is not None
    assert policy.refusal("a", 1, ip("fe80::1")) is not None


def test_host_port_entries_match_only_that_port() -> None:
    policy = OutboundPolicy(["127.0.0.1:5000", "[::1]:5001", "registry.internal:443", "10.9.9.9"])
    assert policy.refusal("127.0.0.1", 5000, ip("127.0.0.1")) is None
    assert policy.refusal("127.0.0.1", 5001, ip("127.0.0.1")) is not None
    assert policy.refusal("::1", 5001, ip("::1")) is None
    assert policy.refusal("::1", 5000, ip("::1")) is not None
    assert policy.refusal("registry.internal", 443, ip("10.1.1.1")) is None
    assert policy.refusal("registry.internal", 80, ip("10.1.1.1")) is not None
    assert policy.refusal("other.internal", 443, ip("10.1.1.1")) is not None
    assert policy.refusal("x", 1234, ip("10.9.9.9")) is None  # an address without a port: every port


@pytest.mark.parametrize("entry", ["127.0.0.1:0", "127.0.0.1:99999", "host:port", "10.0.0.0/33", "[::1", "a b",
                                   "ftp://x", ""])
def test_bad_entries_are_refused_naming_the_setting(entry: str) -> None:
    with pytest.raises(ValueError, match="OUTBOUND_ALLOW"):
        OutboundPolicy.from_settings([entry])


def test_mirror_urls_allow_their_host_and_port() -> None:
    entry = AllowEntry.parse("http://127.0.0.1:5000")
    assert entry.port == 5000 and entry.network == ipaddress.ip_network("127.0.0.1/32")
    assert AllowEntry.parse("https://mirror.internal").port == 443


def test_only_http_and_https_are_fetched() -> None:
    for url in ("file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.com/x"):
        with pytest.raises(OutboundRefused, match="only http and https"):
            OutboundPolicy().check_url(url)


def test_a_dns_name_resolving_to_loopback_is_refused_at_connect_and_no_connection_is_made() -> None:
    with fake_server({"*": body(b"secret")}) as target:
        session = OutboundPolicy().session()
        with pytest.raises(OutboundRefused, match="localhost:.* resolves to .*loopback"):
            session.get(f"http://localhost:{target.port}/", timeout=5)
        assert target.connections == 0
        # Allowed by name, or by address and port, it is reached.
        assert OutboundPolicy([f"localhost:{target.port}"]).session().get(
            f"http://localhost:{target.port}/", timeout=5).content == b"secret"
        assert OutboundPolicy([target.host]).session().get(target.url, timeout=5).content == b"secret"


def test_the_check_is_on_the_address_connected_to_not_a_precheck() -> None:
    """A pre-check without resolution passes a name; the connection itself is still refused."""
    with fake_server({"*": body(b"secret")}) as target:
        policy = OutboundPolicy()
        policy.check_url(f"http://localhost:{target.port}/")  # names are not resolved here...
        with pytest.raises(OutboundRefused):
            requests.Session.get(policy.session(), f"http://localhost:{target.port}/", timeout=5)  # ...but here
        assert target.connections == 0


def test_every_redirect_hop_is_checked_and_credentials_are_dropped_on_another_host() -> None:
    with fake_server({"*": body(b"inner")}) as inner, fake_server() as outer:
        outer.routes["/hop"] = redirect(f"{inner.url}/secret")
        outer.routes["/same"] = redirect("/final")
        outer.routes["/final"] = body(b"ok")
        with pytest.raises(OutboundRefused, match="outbound policy refused .*loopback"):
            OutboundPolicy([outer.host]).session().get(f"{outer.url}/hop", timeout=5)
        assert inner.connections == 0
        allowed = OutboundPolicy([outer.host, inner.host]).session()
        assert allowed.get(f"{outer.url}/hop", headers={"Authorization": "Bearer t0ken"}, timeout=5).content == b"inner"
        assert "authorization" not in inner.requests[-1].headers
        assert allowed.get(f"{outer.url}/same", headers={"Authorization": "Bearer t0ken"}, timeout=5).content == b"ok"
        assert outer.requests[-1].headers.get("authorization") == "Bearer t0ken"


def test_redirect_loops_stop_at_the_hop_limit() -> None:
    with fake_server() as server:
        server.routes["/loop"] = redirect("/loop", 302)
        with pytest.raises(OutboundRefused, match="more than 5 redirects"):
            OutboundPolicy([server.host]).session().get(f"{server.url}/loop", timeout=5)
        assert len(server.requests) == 6


def test_refusals_never_show_credentials() -> None:
    with pytest.raises(OutboundRefused) as info:
        OutboundPolicy().check_url(f"http://user:s3cret@127.0.0.1:{unused_port()}/x?token=abc")
    assert "s3cret" not in str(info.value) and "abc" not in str(info.value)


def test_a_name_whose_first_lookup_fails_is_never_looked_up_again_unchecked(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """DNS rebinding by failure: the policy's own lookup fails (EAI_AGAIN), then a second lookup
    answers 127.0.0.1. Before, urllib3 looked the name up again itself and connected to that
    answer unchecked (a 200 from loopback); now the request fails and nothing is reached."""
    import socket

    real = socket.getaddrinfo
    calls: list[str] = []

    def rebinding(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "rebind.example":
            calls.append(host)
            if len(calls) == 1:
                raise socket.gaierror(socket.EAI_AGAIN, "temporary failure")
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with fake_server({"*": body(b"secret")}) as target:
        with pytest.raises(requests.ConnectionError):
            OutboundPolicy().session().get(f"http://rebind.example:{target.port}/", timeout=5)
        assert target.connections == 0
