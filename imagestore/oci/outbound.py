"""The one outbound policy: where the server may connect when it fetches something for a user.

Every request the server makes on someone's behalf (pull, push, login, search, token
realms, redirects, URL import) goes through an ``OutboundPolicy`` session:

- only ``http`` and ``https``;
- cloud metadata addresses (169.254.169.254, fd00:ec2::254, 100.100.100.200, ...) are never
  reached, whatever is allowed;
- loopback, private (RFC 1918, ULA, CGNAT), link-local and other non-global addresses only
  when the allow-list names them (``host[:port]``, an address, or a CIDR);
- the check is made on the address actually connected to, after DNS resolution, inside
  urllib3's connect (so a name that resolves to a public address for a pre-check and to
  loopback for the connection cannot slip through), and again on every redirect hop;
- every response body is read with a cap.

Refusals are ``OutboundRefused``, whose message names the policy (never what the target
answered) with credentials redacted. No Django here: the services build the policy from
settings (``imagestore.services.registries.outbound_policy``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError

from . import jsonbounds
from .errors import OCIError
from .redact import redact_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
SETTING = "OUTBOUND_ALLOW"

# Instance metadata services hand out cloud credentials to whoever asks from the machine:
# never reached, even when a broader range is allowed.
METADATA_NETWORKS: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n) for n in (
    "169.254.169.0/24",   # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean, Hetzner... (.254, .253 DNS, .123 NTP)
    "169.254.170.2/32",   # AWS ECS task metadata and credentials
    "169.254.0.23/32",    # Tencent Cloud
    "100.100.100.200/32",  # Alibaba Cloud
    "192.0.0.192/32",     # Oracle Cloud (classic)
    "168.63.129.16/32",   # Azure WireServer (a public address, reachable from every Azure VM)
    "fd00:ec2::/64",      # AWS IPv6 (fd00:ec2::254 metadata, ::23 DNS, ::123 NTP)
    "fd20:ce::254/128",   # GCP IPv6 metadata
))
METADATA_NAMES = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal",
    "metadata.tencentyun.com", "metadata.azure.internal",
})
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class OutboundRefused(OCIError):
    """The outbound policy refused a request before any connection to the target was made."""


class ResponseTooLarge(OCIError):
    """A response body was larger than what is read from that kind of answer."""


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4), which is what it reaches."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if int(ip) >> 32 == 0 and int(ip) > 1:  # ::a.b.c.d (deprecated IPv4-compatible)
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify(ip: IPAddress) -> str | None:
    """None for an ordinary public address, else why it is special: ``metadata`` and
    ``unspecified``/``multicast`` are never reached; the rest need the allow-list."""
    for address in (ip, _embedded_v4(ip)):
        if address is None:
            continue
        if any(address in net for net in METADATA_NETWORKS if net.version == address.version):
            return "metadata"
        if address.is_unspecified:
            return "unspecified"
        if address.is_multicast:
            return "multicast"
    for address in (_embedded_v4(ip), ip):  # what it reaches says most
        if address is None:
            continue
        if address.is_loopback:
            return "loopback"
        if address.is_link_local:
            return "link-local"
        if address.is_private:
            return "private"
        if not address.is_global:
            return "non-public"
    return None


NEVER = frozenset({"metadata", "unspecified", "multicast"})
_WHY = {
    "metadata": "a cloud metadata address, never reached",
    "unspecified": "an unspecified address, never reached",
    "multicast": "a multicast address, never reached",
    "loopback": "a loopback address",
    "link-local": "a link-local address",
    "private": "a private address",
    "non-public": "not a public address",
}


@dataclass(frozen=True)
class AllowEntry:
    """One allow-list entry: a network (an address is a /32 or /128) or a host name, with an optional port."""

    network: IPNetwork | None
    name: str | None
    port: int | None

    @classmethod
    def parse(cls, text: str) -> AllowEntry:
        """``10.0.0.0/8``, ``127.0.0.1``, ``127.0.0.1:5000``, ``::1``, ``[::1]:5000``, ``reg.local:5000``,
        or a URL (``http://127.0.0.1:5000``, as mirrors are given). ValueError when it is none of them."""
        raw = text.strip()
        if not raw:
            raise ValueError("an empty entry")
        if "://" in raw:
            parts = urlsplit(raw)
            if parts.scheme not in SCHEMES or not parts.hostname:
                raise ValueError(f"{raw!r} is not an http(s) URL")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            return cls._host(parts.hostname, port)
        if "/" in raw:
            return cls(ipaddress.ip_network(raw, strict=False), None, None)
        try:
            return cls(ipaddress.ip_network(raw), None, None)  # a bare address, v4 or v6
        except ValueError:
            pass
        if raw.startswith("["):
            host, bracket, rest = raw[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ValueError(f"{raw!r}: expected [address]:port")
            return cls._host(host, _port(rest[1:], raw) if rest else None)
        host, _, port_text = raw.partition(":")
        return cls._host(host, _port(port_text, raw) if port_text else None)

    @classmethod
    def _host(cls, host: str, port: int | None) -> AllowEntry:
        try:
            return cls(ipaddress.ip_network(host), None, port)
        except ValueError:
            pass
        name = host.lower().rstrip(".")
        if not name or not all(label and len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum()
                               for label in name.split(".")):
            raise ValueError(f"{host!r} is not a host name, address or CIDR")
        return cls(None, name, port)

    def matches(self, name: str, port: int, ip: IPAddress) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return ip.version == self.network.version and ip in self.network
        return self.name == name


def _port(text: str, raw: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{raw!r}: {text!r} is not a port")
    return int(text)


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


class OutboundPolicy:
    """Which addresses the server may connect to on someone's behalf (see the module's doc)."""

    def __init__(self, allow: Iterable[str | AllowEntry] = ()) -> None:
        self.allow = tuple(e if isinstance(e, AllowEntry) else AllowEntry.parse(e) for e in allow)

    @classmethod
    def from_settings(cls, allow: Iterable[str], *implicit: str) -> OutboundPolicy:
        """``allow``: OUTBOUND_ALLOW's entries (a bad one raises ValueError naming it); ``implicit``: the
        endpoints the site configured (mirror URLs, insecure registries, the search index), allowed too."""
        entries = []
        for text in allow:
            try:
                entries.append(AllowEntry.parse(text))
            except ValueError as exc:
                raise ValueError(f"{SETTING}: invalid entry {text!r} ({exc}); give host[:port] or a CIDR") from None
        for text in implicit:
            try:
                entries.append(AllowEntry.parse(text))
            except ValueError:
                continue  # a malformed mirror is reported where mirrors are used
        return cls(entries)

    # --- decisions ----------------------------------------------------------------------

    def refusal(self, name: str, port: int, ip: IPAddress) -> str | None:
        """Why connecting to ``ip`` (found for host ``name``) on ``port`` is refused, or None."""
        kind = classify(ip)
        if kind is None:
            return None
        if kind in NEVER:
            return f"{ip} is {_WHY[kind]}"
        if any(entry.matches(name, port, ip) for entry in self.allow):
            return None
        return f"{ip} is {_WHY[kind]}; allow it in {SETTING} (host[:port] or CIDR)"

    def check_url(self, url: str, *, resolve: bool = False) -> None:
        """Refuse a URL by its scheme, a metadata host name, or an address literal; with ``resolve``,
        by every address its name has (a pre-check before a job starts: the connection is checked again).
        A name that does not resolve passes: connecting will say it cannot be reached."""
        shown = redact_url(url)
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise OutboundRefused(f"outbound policy refused {shown}: not a valid URL") from None
        if parts.scheme not in SCHEMES:
            raise OutboundRefused(f"outbound policy refused {shown}: only http and https are fetched")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise OutboundRefused(f"outbound policy refused {shown}: no host")
        self.check_host(host, port, shown, resolve=resolve)

    def check_host(self, host: str, port: int, shown: str, *, resolve: bool) -> list[IPAddress]:
        """The addresses of ``host`` that may be connected to (all refused -> OutboundRefused)."""
        name = host.lower().rstrip(".")
        if name in METADATA_NAMES:
            raise OutboundRefused(f"outbound policy refused {shown}: {name} is a cloud metadata service, never reached")
        literal = _ip(name)
        if literal is not None:
            addresses = [literal]
        elif not resolve:
            return []
        else:
            try:
                addresses = _resolve(host, port)
            except OSError:
                return []
        permitted = [ip for ip in addresses if self.refusal(name, port, ip) is None]
        if addresses and not permitted:
            why = self.refusal(name, port, addresses[0]) or ""
            target = f"{name}:{port}" if literal is None else shown
            raise OutboundRefused(f"outbound policy refused {shown}: "
                                  + (why if literal is not None else f"{target} resolves to a refused address ({why})"))
        return permitted

    # --- the session --------------------------------------------------------------------

    def session(self, user_agent: str = "imagestore/1") -> OutboundSession:
        return OutboundSession(self, user_agent)


def _resolve(host: str, port: int) -> list[IPAddress]:
    seen: list[IPAddress] = []
    for family, _type, _proto, _canon, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in seen:
            seen.append(ip)
    return seen


def _checked_connection(base: type[HTTPConnection], policy: OutboundPolicy) -> type[HTTPConnection]:
    """A urllib3 connection class that resolves the host itself, keeps only the addresses the
    policy permits, and connects to one of those (never resolving again: no DNS rebinding)."""

    class Checked(base):  # type: ignore[valid-type,misc]
        def _new_conn(self) -> socket.socket:
            host: str = self._dns_host  # type: ignore[has-type]
            scheme = "https" if isinstance(self, HTTPSConnection) else "http"
            shown = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{self.port}"
            permitted = policy.check_host(host, int(self.port), shown, resolve=True)
            if not permitted:
                # The name did not resolve. Never let urllib3 look it up again: a second answer
                # (127.0.0.1, a metadata address) would be connected to unchecked.
                raise NameResolutionError(host, self, socket.gaierror(socket.EAI_NONAME, "the name does not resolve"))
            last: Exception | None = None
            for ip in permitted:
                self._dns_host = str(ip)  # connect to exactly this address...
                try:
                    return super()._new_conn()  # type: ignore[no-any-return]
                except Exception as exc:  # noqa: BLE001 - urllib3's connect errors: try the next address
                    last = exc
                finally:
                    self._dns_host = host  # ...and keep the name for TLS (SNI, certificate check)
            assert last is not None
            raise last

    Checked.__name__ = f"Checked{base.__name__}"
    return Checked


class _CheckedAdapter(HTTPAdapter):
    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        policy = self.policy

        class HTTPPool(HTTPConnectionPool):
            ConnectionCls = _checked_connection(HTTPConnection, policy)

        class HTTPSPool(HTTPSConnectionPool):
            ConnectionCls = cast(type[HTTPSConnection], _checked_connection(HTTPSConnection, policy))

        self.poolmanager.pool_classes_by_scheme = {"http": HTTPPool, "https": HTTPSPool}

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        # A proxy would be the address connected to, and the target's would go unchecked.
        raise OutboundRefused("outbound policy: requests through a proxy are not made")


class OutboundSession(requests.Session):
    """A requests session whose every connection is checked by the policy, that follows
    redirects itself (at most MAX_REDIRECTS, each hop checked, credentials dropped when the
    host changes) and ignores the environment (no proxies, no ~/.netrc credentials)."""

    def __init__(self, policy: OutboundPolicy, user_agent: str = "imagestore/1") -> None:
        super().__init__()
        self.policy = policy
        self.trust_env = False
        self.max_redirects = MAX_REDIRECTS
        self.headers["User-Agent"] = user_agent
        adapter = _CheckedAdapter(policy)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method: str | bytes, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        follow = kwargs.pop("allow_redirects", True)
        method, url = str(method if isinstance(method, str) else method.decode()), str(
            url if isinstance(url, str) else url.decode())
        self.policy.check_url(url)
        response = super().request(method, url, allow_redirects=False, **kwargs)
        hops = 0
        while follow and response.is_redirect:
            hops += 1
            if hops > MAX_REDIRECTS:
                response.close()
                raise OutboundRefused(f"outbound policy refused {redact_url(url)}: more than {MAX_REDIRECTS} redirects")
            target = urljoin(response.url, response.headers["Location"])
            response.close()
            if kwargs.get("data") is not None and response.status_code in (307, 308):
                raise OutboundRefused(f"outbound policy refused {redact_url(url)}: a redirect of a request with a body")
            self.policy.check_url(target)
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method = "GET"
                kwargs.pop("data", None)
            kwargs["headers"] = _headers_for(url, target, kwargs.get("headers"))
            if not _same_origin(url, target):
                kwargs.pop("auth", None)
            kwargs.pop("params", None)  # already part of the Location
            url = target
            response = super().request(method, url, allow_redirects=False, **kwargs)
        return response


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.hostname, pa.port or (443 if pa.scheme == "https" else 80)) == (
        pb.hostname, pb.port or (443 if pb.scheme == "https" else 80)) and not (pa.scheme == "https" != pb.scheme)


def _headers_for(source: str, target: str, headers: Any) -> dict[str, str]:
    """The headers for a redirect hop: no Authorization to another host (as Docker and requests do)."""
    kept = dict(headers or {})
    if not _same_origin(source, target):
        kept = {k: v for k, v in kept.items() if k.lower() != "authorization"}
    return kept


def may_send_credentials(realm: str, registry_base_url: str) -> bool:
    """Basic credentials go to a token service only over https, or on the registry's own host."""
    realm_parts, registry_parts = urlsplit(realm), urlsplit(registry_base_url)
    if realm_parts.scheme == "https":
        return True
    return bool(realm_parts.hostname) and realm_parts.hostname == registry_parts.hostname


# --- bodies, always read with a cap ---------------------------------------------------------

def read_capped(response: requests.Response, limit: int, what: str) -> bytes:
    """A response body of at most ``limit`` bytes; more closes the response and raises."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise ResponseTooLarge(f"{what} is larger than {_size(limit)} ({_size(int(declared))} announced)")
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_content(65536):
        total += len(chunk)
        if total > limit:
            response.close()
            raise ResponseTooLarge(f"{what} is larger than {_size(limit)}")
        chunks.append(chunk)
    return b"".join(chunks)


def read_json(response: requests.Response, limit: int, what: str) -> Any:
    """A JSON response body read with a cap and parsed with a bounded depth (jsonbounds);
    ValueError (InvalidJSON, LimitExceeded) when it is not acceptable JSON."""
    data = read_capped(response, limit, what)
    return jsonbounds.loads(data, what=what, max_size=limit)


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and not n % (1 << 20) else (f"{n >> 10} KiB" if n >= 1024 else f"{n} bytes")
