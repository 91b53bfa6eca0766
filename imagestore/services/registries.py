"""Which endpoints serve a registry host, and with whose credentials: the one place
the site's registry settings (mirrors, insecure hosts) and stored logins meet."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext

from ..models import RegistryCredential
from ..oci.outbound import OutboundPolicy
from ..oci.redact import redact_url
from ..oci.registry import DOCKER_HUB, Credentials, Endpoint, RegistryClient
from ..secrets import decrypt


def registry_settings() -> dict[str, Any]:
    """The site's registry settings as anyone signed in may read them: a mirror's user and
    password (``http://user:pw@host``) stay in the settings."""
    return {
        "registry_mirrors": [redact_url(url) for url in settings.REGISTRY_MIRRORS],
        "insecure_registries": list(settings.INSECURE_REGISTRIES),
        "insecure_by_default": gettext("loopback addresses (%(addresses)s)") % {
            "addresses": "127.0.0.0/8, ::1, localhost"},
        "docker_hub_index_url": settings.DOCKER_HUB_INDEX_URL,
        "pull_concurrency": settings.PULL_CONCURRENCY,
    }


def outbound_policy() -> OutboundPolicy:
    """The site's outbound policy: OUTBOUND_ALLOW, plus the endpoints it configured (mirrors,
    insecure registries, the Docker Hub search index), which are allowed too."""
    proxy = [settings.REGISTRY_PROXY_REMOTE] if settings.REGISTRY_PROXY_REMOTE else []
    key = (tuple(settings.OUTBOUND_ALLOW), tuple(settings.REGISTRY_MIRRORS), tuple(settings.INSECURE_REGISTRIES),
           settings.DOCKER_HUB_INDEX_URL, tuple(proxy))
    if _policy_cache.get("key") != key:
        try:
            policy = OutboundPolicy.from_settings(settings.OUTBOUND_ALLOW, *settings.REGISTRY_MIRRORS,
                                                  *settings.INSECURE_REGISTRIES, settings.DOCKER_HUB_INDEX_URL,
                                                  *proxy)
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from None
        _policy_cache.update(key=key, policy=policy)
    return _policy_cache["policy"]  # type: ignore[no-any-return]


_policy_cache: dict[str, Any] = {}


def configured_registries() -> set[str]:
    """Registry hosts the site was set up to use: mirrors, insecure registries, the search index,
    and every registry someone stored a login for (a read-only user may search these)."""
    hosts = {DOCKER_HUB, *settings.INSECURE_REGISTRIES}
    for url in (*settings.REGISTRY_MIRRORS, settings.DOCKER_HUB_INDEX_URL):
        netloc = urlsplit(url).netloc.rpartition("@")[2]
        if netloc:
            hosts.add(netloc)
    hosts.update(RegistryCredential.objects.values_list("registry", flat=True).distinct())
    return hosts


def check_reachable(host: str) -> None:
    """Refuse now (a 400 naming the policy) a registry the outbound policy will not connect to,
    rather than in a job later; the job's connections are checked again."""
    if host == DOCKER_HUB:
        return  # a fixed public name (and its mirrors are the site's own choice)
    endpoint = Endpoint.for_host(host, insecure_registries())
    outbound_policy().check_url(endpoint.base_url + "/v2/", resolve=True)


def insecure_registries() -> frozenset[str]:
    return frozenset(settings.INSECURE_REGISTRIES)


def endpoints_for(host: str, *, upstream: str | None = None) -> list[tuple[Endpoint, bool]]:
    """(endpoint, is_mirror) in the order to try: docker.io's mirrors first, then the host.
    With ``upstream`` (the pull-through cache's REGISTRY_PROXY_REMOTE), that endpoint alone."""
    if upstream:
        endpoint = Endpoint.from_url(upstream, host)
        return [(endpoint, False)]
    out: list[tuple[Endpoint, bool]] = []
    if host == DOCKER_HUB:
        out += [(Endpoint.from_url(url, host), True) for url in settings.REGISTRY_MIRRORS]
    out.append((Endpoint.for_host(host, insecure_registries()), False))
    return out


def credentials_for(owner: Any, host: str) -> Credentials | None:
    if owner is None or not getattr(owner, "pk", None):
        return None
    row = RegistryCredential.objects.filter(owner=owner, registry=host).first()
    if row is None:
        return None
    return Credentials(row.username, decrypt(row.secret_encrypted))


def client_for(host: str, owner: Any = None, endpoint: Endpoint | None = None) -> RegistryClient:
    """A client of ``host`` (or of one of its mirrors), logged in as ``owner`` where they have a login.
    A mirror never gets the owner's Docker Hub password: it is another server."""
    endpoint = endpoint or Endpoint.for_host(host, insecure_registries())
    is_mirror = endpoint.base_url != Endpoint.for_host(host, insecure_registries()).base_url
    return RegistryClient(endpoint, None if is_mirror else credentials_for(owner, host), policy=outbound_policy())
