"""``docker login`` / ``docker logout``: per-user registry credentials, checked against
the registry before they are kept, and stored encrypted."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.utils.translation import gettext

from ..errors import BadRequest
from ..models import RegistryCredential
from ..oci.registry import DOCKER_HUB, AuthenticationRequired, Credentials, Endpoint, RegistryClient, RegistryError
from ..secrets import encrypt
from . import audit
from .registries import check_reachable, insecure_registries, outbound_policy

_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_HOST_RE = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                      r"|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$")


def normalize_registry(value: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``127.0.0.1:5000/`` -> ``127.0.0.1:5000``."""
    host = (value or "").strip()
    host = re.sub(r"^[a-z]+://", "", host).split("/", 1)[0]
    if not host:
        return DOCKER_HUB
    if host.lower() in _HUB_ALIASES:
        return DOCKER_HUB
    if not _HOST_RE.match(host):
        raise BadRequest(gettext("invalid registry %(value)s: give a host[:port], e.g. registry.example.com:5000")
                         % {"value": repr(value)},
                         field="registry")
    return host


def login(owner: Any, registry: str, username: str, secret: str) -> RegistryCredential:
    """Check the credentials with the registry (``/v2/`` and its challenge), then keep them."""
    with audit.action("login", object_type="registry", names=[str(registry)], attributes={"username": username}):
        return _login(owner, registry, username, secret)


def _login(owner: Any, registry: str, username: str, secret: str) -> RegistryCredential:
    host = normalize_registry(registry)
    if not username or not secret:
        raise BadRequest(gettext("a username and a password (or token) are needed to log in"),
                         field="password" if username else "username")
    check_reachable(host)
    client = RegistryClient(Endpoint.for_host(host, insecure_registries()), Credentials(username, secret),
                            policy=outbound_policy())
    try:
        client.ping()
    except AuthenticationRequired:
        raise BadRequest(gettext("login to %(host)s failed: the registry refused that username and password")
                         % {"host": host},
                         field="password") from None
    except RegistryError as exc:
        raise BadRequest(gettext("login to %(host)s failed: %(exc)s")
                         % {"host": host, "exc": exc}, field="registry") from None
    with transaction.atomic():
        credential, _ = RegistryCredential.objects.update_or_create(
            registry=host, owner=owner, defaults={"username": username, "secret_encrypted": encrypt(secret)}
        )
        audit.record("login", object_type="registry", object_id=host, names=[host], attributes={"username": username})
    return credential


def logout(owner: Any, registry: str) -> bool:
    host = normalize_registry(registry)
    with transaction.atomic():
        deleted, _ = RegistryCredential.objects.filter(owner=owner, registry=host).delete()
        if deleted:
            audit.record("logout", object_type="registry", object_id=host, names=[host])
    return bool(deleted)
