"""A client of the OCI Distribution Spec (https://github.com/opencontainers/distribution-spec/blob/main/spec.md).

Transport only: manifests and blobs by digest, uploads, the tag list and catalog,
and the auth challenge flow (Docker's token spec: https://distribution.github.io/distribution/spec/auth/token/
and basic auth). No Django here; errors are ``RegistryError`` with a ``temporary``
flag for retries, and credentials never appear in a message.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests

from . import mediatypes
from .digest import Digest
from .errors import DigestMismatch, InvalidDigest, OCIError
from .outbound import OutboundPolicy, OutboundRefused, ResponseTooLarge, may_send_credentials, read_capped, read_json
from .redact import redact_url

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
MANIFEST_TYPES = (
    mediatypes.OCI_INDEX,
    mediatypes.DOCKER_MANIFEST_LIST,
    mediatypes.OCI_MANIFEST,
    mediatypes.DOCKER_MANIFEST,
)
# The distribution registry's own limit for manifests (and what it accepts on push); configs and
# indexes are held to it too. https://github.com/distribution/distribution/blob/main/registry/handlers/manifests.py
MAX_MANIFEST = 4 << 20
MAX_CONFIG = 4 << 20
MAX_TOKEN = 1 << 20  # a token answer: a JWT or two, a few KiB
MAX_LISTING = 4 << 20  # a catalog or tag list page
MAX_ERROR = 64 << 10  # an error body: only its first message is shown
TIMEOUT = (10, 60)  # connect, read


class RegistryError(OCIError):
    """A registry answered an error, or could not be reached.

    ``temporary`` says whether trying again may help (a dropped connection, a 5xx,
    429), as opposed to a missing manifest or refused credentials.
    """

    def __init__(self, message: str, *, status: int | None = None, temporary: bool = False,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.temporary = temporary
        self.code = code


class AuthenticationRequired(RegistryError):
    pass


@dataclass(frozen=True)
class Credentials:
    username: str
    secret: str

    def __repr__(self) -> str:  # never shown, even in a traceback
        return f"Credentials(username={self.username!r}, secret=***)"


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.index("]")]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Endpoint:
    """Where a registry host is spoken to: ``https://registry-1.docker.io`` for docker.io."""

    host: str  # as in references: docker.io, 127.0.0.1:5000
    base_url: str

    @classmethod
    def for_host(cls, host: str, insecure: set[str] | frozenset[str] = frozenset()) -> Endpoint:
        api_host = DOCKER_HUB_API if host == DOCKER_HUB else host
        scheme = "http" if (host in insecure or is_loopback(host)) else "https"
        return cls(host, f"{scheme}://{api_host}")

    @classmethod
    def from_url(cls, url: str, host: str) -> Endpoint:
        """A mirror: an endpoint at ``url`` that serves ``host``'s repositories."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(f"invalid registry URL {redact_url(url)!r}")
        return cls(host, f"{parts.scheme}://{parts.netloc}")


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"|(\w+)=([^,\s]+)')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for m in _CHALLENGE_PARAM.finditer(rest):
        key = m.group(1) or m.group(3)
        params[key.lower()] = m.group(2) if m.group(1) else m.group(4)
    return scheme.lower(), params


def _error_message(response: requests.Response) -> tuple[str, str | None]:
    try:
        errors = read_json(response, MAX_ERROR, "an error body").get("errors") or []
        if errors:
            first = errors[0]
            return str(first.get("message") or first.get("code"))[:500], first.get("code")
    except (ValueError, AttributeError, TypeError, KeyError, IndexError, ResponseTooLarge, requests.RequestException):
        pass
    return response.reason or f"HTTP {response.status_code}", None


def _same_host(url: str, base_url: str) -> bool:
    """Whether ``url`` is on the registry's own host and port (where its credentials may go)."""
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


class RegistryClient:
    """One registry endpoint, with the tokens it handed out cached per scope."""

    def __init__(self, endpoint: Endpoint, credentials: Credentials | None = None,
                 policy: OutboundPolicy | None = None, user_agent: str = "imagestore/1") -> None:
        """``policy``: where this client may connect (the site's; without one, public addresses only)."""
        self.endpoint = endpoint
        self.credentials = credentials
        self.policy = policy or OutboundPolicy()
        self.session = self.policy.session(user_agent)
        self._tokens: dict[str, str] = {}
        self._basic = False
        self._lock = threading.Lock()

    # --- auth -----------------------------------------------------------------------

    def _auth_header(self, scope: str) -> dict[str, str]:
        with self._lock:
            if scope in self._tokens:
                return {"Authorization": f"Bearer {self._tokens[scope]}"}
            if self._basic and self.credentials:
                raw = f"{self.credentials.username}:{self.credentials.secret}".encode()
                return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def _authenticate(self, response: requests.Response, scope: str) -> None:
        header = response.headers.get("WWW-Authenticate", "")
        scheme, params = parse_challenge(header)
        if scheme == "basic":
            if not self.credentials:
                raise AuthenticationRequired(
                    f"{self.endpoint.host}: authentication required (log in to this registry)", status=401)
            self._basic = True
            return
        if scheme != "bearer" or "realm" not in params:
            raise AuthenticationRequired(f"{self.endpoint.host}: unsupported authentication challenge", status=401)
        query = {"service": params.get("service", "")}
        if scope:
            query["scope"] = scope
        realm = params["realm"]
        auth = (self.credentials.username, self.credentials.secret) if self.credentials else None
        if auth:
            if not may_send_credentials(realm, self.endpoint.base_url):
                raise OutboundRefused(
                    f"outbound policy refused the token service {redact_url(realm)} of {self.endpoint.host}: "
                    "credentials are sent to a token service only over https or on the registry's own host")
            query["account"] = self.credentials.username  # type: ignore[union-attr]
        try:
            token_response = self.session.get(realm, params=query, auth=auth, timeout=TIMEOUT, stream=True)
        except requests.RequestException as exc:
            raise RegistryError(f"{self.endpoint.host}: token service unreachable ({exc.__class__.__name__})",
                                temporary=True) from None
        if token_response.status_code in (401, 403):
            token_response.close()
            raise AuthenticationRequired(
                f"{self.endpoint.host}: authentication failed (wrong username or password?)",
                status=token_response.status_code)
        if token_response.status_code != 200:
            token_response.close()
            raise RegistryError(f"{self.endpoint.host}: token service answered {token_response.status_code}",
                                status=token_response.status_code, temporary=token_response.status_code >= 500)
        try:
            body = read_json(token_response, MAX_TOKEN, f"{self.endpoint.host}: the token service's answer")
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError, requests.RequestException):
            token = None
        if token is not None and not isinstance(token, str):
            token = None
        if not token:
            raise RegistryError(f"{self.endpoint.host}: token service gave no token")
        with self._lock:
            self._tokens[scope] = token

    def request(self, method: str, path_or_url: str, *, scope: str = "", expected: tuple[int, ...] = (200,),
                headers: dict[str, str] | None = None, stream: bool = False, what: str = "",
                **kwargs: Any) -> requests.Response:
        url = path_or_url if "://" in path_or_url else self.endpoint.base_url + path_or_url
        # Credentials and tokens go to the registry itself, not to a host a Location header names.
        authorize = _same_host(url, self.endpoint.base_url)
        for attempt in range(2):
            all_headers = {**(headers or {}), **(self._auth_header(scope) if authorize else {})}
            if hasattr(kwargs.get("data"), "seek") and attempt:
                kwargs["data"].seek(0)
            try:
                response = self.session.request(method, url, headers=all_headers, stream=stream,
                                                timeout=TIMEOUT, allow_redirects=True, **kwargs)
            except requests.TooManyRedirects:
                raise OutboundRefused(f"outbound policy refused {redact_url(url)}: too many redirects") from None
            except requests.RequestException as exc:
                raise RegistryError(
                    f"{self.endpoint.host}: cannot reach {redact_url(url)} ({exc.__class__.__name__})",
                    temporary=True) from None
            if response.status_code == 401 and attempt == 0 and authorize:
                response.close()
                self._authenticate(response, scope)
                continue
            break
        if response.status_code in expected:
            return response
        message, code = _error_message(response)
        response.close()
        status = response.status_code
        subject = f"{what}: " if what else ""
        if status == 401:
            raise AuthenticationRequired(f"{self.endpoint.host}: {subject}authentication required ({message})",
                                         status=status, code=code)
        if status == 403:
            raise AuthenticationRequired(f"{self.endpoint.host}: {subject}access denied ({message})",
                                         status=status, code=code)
        raise RegistryError(f"{self.endpoint.host}: {subject}{message}", status=status,
                            temporary=status >= 500 or status == 429, code=code)

    # --- the API ------------------------------------------------------------------------

    def ping(self) -> None:
        """``GET /v2/``, answering the challenge if there is one (checks credentials)."""
        self.request("GET", "/v2/", scope="", what="ping")

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, Digest]:
        """The manifest's bytes, media type and digest (verified when ``reference`` is one)."""
        response = self.request(
            "GET", f"/v2/{repository}/manifests/{reference}", scope=f"repository:{repository}:pull",
            headers={"Accept": ", ".join(MANIFEST_TYPES)}, what=f"manifest {repository}:{reference}",
            stream=True,
        )
        data = read_capped(response, MAX_MANIFEST, f"{self.endpoint.host}: manifest {repository}:{reference}")
        digest = Digest("sha256", hashlib.sha256(data).hexdigest())
        if reference.startswith("sha256:") and str(digest) != reference:
            raise DigestMismatch(reference, str(digest), what=f"manifest {repository}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return data, media_type, digest

    def head_manifest(self, repository: str, reference: str) -> tuple[Digest, str, int]:
        """The digest, media type and size the registry serves for ``reference``, from a HEAD
        (``Docker-Content-Digest``; registries do not count a HEAD against pull limits). A
        registry that names no digest is asked with GET, and the bytes are hashed."""
        response = self.request(
            "HEAD", f"/v2/{repository}/manifests/{reference}", scope=f"repository:{repository}:pull",
            headers={"Accept": ", ".join(MANIFEST_TYPES)}, what=f"manifest {repository}:{reference}",
        )
        response.close()
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        named = response.headers.get("Docker-Content-Digest", "")
        length = response.headers.get("Content-Length", "")
        try:
            return Digest.parse(named), media_type, int(length) if length.isdigit() else 0
        except InvalidDigest:
            data, media_type, digest = self.get_manifest(repository, reference)
            return digest, media_type, len(data)

    def blob(self, repository: str, digest: Digest | str, offset: int = 0) -> requests.Response:
        """A streaming response for the blob, from ``offset`` when asked (``Range``)."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        return self.request("GET", f"/v2/{repository}/blobs/{digest}", scope=f"repository:{repository}:pull",
                            expected=(200, 206), headers=headers, stream=True, what=f"blob {digest}")

    def blob_exists(self, repository: str, digest: Digest | str, scope: str | None = None) -> bool:
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}",
                                scope=scope or f"repository:{repository}:pull", expected=(200, 404))
        return response.status_code == 200

    def mount_blob(self, repository: str, digest: Digest | str, from_repository: str) -> str | None:
        """Cross-repository mount; None when mounted, else the upload URL the registry opened instead."""
        response = self.request(
            "POST", f"/v2/{repository}/blobs/uploads/?mount={digest}&from={from_repository}",
            scope=f"repository:{repository}:pull,push repository:{from_repository}:pull",
            expected=(201, 202), what=f"mount {digest}",
        )
        if response.status_code == 201:
            return None
        return urljoin(self.endpoint.base_url + "/", response.headers["Location"])

    def start_upload(self, repository: str) -> str:
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/",
                                scope=f"repository:{repository}:pull,push", expected=(202,), what="upload")
        return urljoin(self.endpoint.base_url + "/", response.headers["Location"])

    def upload_blob(self, repository: str, digest: Digest | str, source: BinaryIO, size: int, *,
                    location: str | None = None, chunk_size: int | None = None,
                    on_progress: Any = None) -> None:
        """Monolithic (one PUT) or chunked (PATCHes, then PUT) upload of one blob."""
        scope = f"repository:{repository}:pull,push"
        location = location or self.start_upload(repository)
        sent = 0
        if chunk_size:
            while sent < size:
                data = source.read(min(chunk_size, size - sent))
                if not data:
                    raise RegistryError(f"blob {digest} ended after {sent} of {size} bytes")
                response = self.request(
                    "PATCH", location, scope=scope, expected=(202,), data=data, what=f"upload {digest}",
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Range": f"{sent}-{sent + len(data) - 1}", "Content-Length": str(len(data))},
                )
                location = urljoin(self.endpoint.base_url + "/", response.headers["Location"])
                sent += len(data)
                if on_progress:
                    on_progress(sent, size)
            body: Any = b""
        else:
            body = _ProgressReader(source, size, on_progress)
        separator = "&" if "?" in location else "?"
        self.request("PUT", f"{location}{separator}digest={digest}", scope=scope, expected=(201,),
                     data=body, headers={"Content-Type": "application/octet-stream",
                                         "Content-Length": str(0 if chunk_size else size)},
                     what=f"upload {digest}")

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> Digest:
        response = self.request("PUT", f"/v2/{repository}/manifests/{reference}",
                                scope=f"repository:{repository}:pull,push", expected=(201,), data=data,
                                headers={"Content-Type": media_type}, what=f"manifest {repository}:{reference}")
        header = response.headers.get("Docker-Content-Digest")
        digest = Digest("sha256", hashlib.sha256(data).hexdigest())
        if header and header != str(digest):
            raise DigestMismatch(str(digest), header, what="pushed manifest")
        return digest

    def catalog(self, limit: int = 1000) -> list[str]:
        response = self.request("GET", f"/v2/_catalog?n={limit}", scope="registry:catalog:*", what="catalog",
                                stream=True)
        return [str(r) for r in _listing(response, "repositories", f"{self.endpoint.host}: catalog")]

    def tags(self, repository: str) -> list[str]:
        response = self.request("GET", f"/v2/{repository}/tags/list", scope=f"repository:{repository}:pull",
                                what=f"tags of {repository}", stream=True)
        return [str(t) for t in _listing(response, "tags", f"{self.endpoint.host}: tags of {repository}")]


def _listing(response: requests.Response, key: str, what: str) -> list[Any]:
    try:
        body = read_json(response, MAX_LISTING, what)
    except ValueError:
        raise RegistryError(f"{what}: not JSON") from None
    items = body.get(key) if isinstance(body, dict) else None
    return items if isinstance(items, list) else []


class _ProgressReader:
    """A file-like body for requests that reports bytes sent."""

    def __init__(self, source: BinaryIO, size: int, on_progress: Any) -> None:
        self.source, self.size, self.on_progress, self.sent = source, size, on_progress, 0

    def read(self, n: int = -1) -> bytes:
        # Whatever http.client asks for (8 KiB), a bigger chunk costs fewer round trips.
        data = self.source.read(1 << 20)
        self.sent += len(data)
        if self.on_progress:
            self.on_progress(self.sent, self.size)
        return data

    def __len__(self) -> int:
        return self.size

    def seek(self, offset: int) -> None:
        """Start over, when a request is sent again after an auth challenge."""
        self.source.seek(offset)
        self.sent = offset

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(1 << 20):
            yield chunk


def retry(fn: Any, *, attempts: int = 4, base_delay: float = 0.5) -> Any:
    """Call ``fn`` again after temporary registry errors, with exponential back-off."""
    for attempt in range(attempts):
        try:
            return fn()
        except RegistryError as exc:
            if not exc.temporary or attempt == attempts - 1:
                raise
            time.sleep(base_delay * (2 ** attempt))
    raise AssertionError("unreachable")
