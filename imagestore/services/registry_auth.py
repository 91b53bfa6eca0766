"""Who may do what at /v2/, and the short-lived bearer tokens Docker clients ask for.

Docker's token flow (https://distribution.github.io/distribution/spec/auth/token/): a
request without a valid token gets ``401`` with ``WWW-Authenticate: Bearer realm=...,
service=..., scope=...``; the client asks the realm (``/v2/token``) for a token with that
scope, with the dashboard user's password or API token as HTTP Basic (or nothing, for
anonymous pulls of public repositories), and gets one granting what the user may do of it.

Rights: operators may pull, push and delete everywhere; every signed-in user may pull; a
RepositoryGrant gives a user or group more on one repository (``team/app``) or a namespace
(``team/*``); anyone may pull a repository marked public. The catalog is for operators.

Tokens are Django-signed (SECRET_KEY, their own salt), carry the user and the granted
access, and expire after REGISTRY_TOKEN_SECONDS; the user row is read again on every use, so
a deactivated user's token ends at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db.models import Q

from .. import login_limit
from ..models import Repository, RepositoryGrant
from ..oci.distribution import Scope
from ..permissions import is_operator
from .tokens import KEY_PREFIX, user_for_key

PULL, PUSH, DELETE = "pull", "push", "delete"
ALL_ACTIONS = frozenset({PULL, PUSH, DELETE})
CATALOG = Scope("registry", "catalog", frozenset({"*"}))
_SALT = "imagestore.registry.token"


class LoginFailed(Exception):
    """Wrong credentials (or locked by the sign-in limit): the client is told 401."""


@dataclass
class Access:
    """Who is asking and what a token (or Basic credentials) allows."""

    user: Any  # None for anonymous
    granted: dict[tuple[str, str], frozenset[str]] | None = None  # None: whatever the user may (Basic)

    def allows(self, scope_type: str, name: str, action: str, repository: Repository | None = None) -> bool:
        if self.granted is not None:
            return action in self.granted.get((scope_type, name), frozenset())
        if scope_type == "registry":
            return "*" in allowed_actions(self.user, CATALOG)
        return action in repository_actions(self.user, name, repository)


def check_password(request: Any, username: str, password: str) -> Any:
    """The active user these Basic credentials name: a password (with the sign-in limit) or one
    of the user's API tokens as the password (``docker login -u olive -p ims_...``)."""
    from rest_framework.exceptions import AuthenticationFailed

    from ..api.auth_basic import CachedBasicAuthentication

    if password.startswith(KEY_PREFIX):
        address = login_limit.client_address(request)
        if login_limit.is_locked(login_limit.TOKEN_USERNAME, address):
            raise LoginFailed(login_limit.locked_message())
        found = user_for_key(password)
        if found is None or found[0].get_username() != username:
            login_limit.record_failure(login_limit.TOKEN_USERNAME, address)
            raise LoginFailed("invalid username or token")
        return found[0]
    try:
        user, _ = CachedBasicAuthentication().authenticate_credentials(username, password, request)
    except AuthenticationFailed as exc:
        raise LoginFailed(str(exc.detail)) from None
    return user


def _grants(user: Any, name: str) -> list[RepositoryGrant]:
    if not (user and user.is_authenticated):
        return []
    parts = name.split("/")
    namespaces = [f"{'/'.join(parts[:i])}/*" for i in range(1, len(parts))]
    return list(RepositoryGrant.objects.filter(Q(path=name) | Q(path__in=namespaces))
                .filter(Q(user=user) | Q(group__in=user.groups.all())))


def repository_actions(user: Any, name: str, repository: Repository | None = None) -> frozenset[str]:
    """What ``user`` (None: anonymous) may do with the /v2/ repository ``name``."""
    signed_in = bool(user and user.is_authenticated and user.is_active)
    if signed_in and is_operator(user):
        return ALL_ACTIONS
    actions: set[str] = set()
    if signed_in or repository is not None and repository.public:
        actions.add(PULL)
    for grant in _grants(user, name) if signed_in else []:
        actions |= {a for a, on in ((PULL, grant.can_pull), (PUSH, grant.can_push), (DELETE, grant.can_delete)) if on}
    if PUSH in actions or DELETE in actions:
        actions.add(PULL)  # a client pushing asks for pull,push; deleting needs to read
    return frozenset(actions)


def _proxied(name: str, repository: Repository | None) -> bool:
    from .registry_serve import proxied

    return proxied(name, repository)


def allowed_actions(user: Any, scope: Scope, repository: Repository | None = None) -> frozenset[str]:
    if scope.type == "registry":
        return frozenset({"*"}) if scope.name == "catalog" and is_operator(user) else frozenset()
    return repository_actions(user, scope.name, repository)


def issue_token(user: Any, scopes: list[tuple[Scope, Repository | None]]) -> dict[str, Any]:
    """The token endpoint's answer: the access granted is what was asked for and is allowed."""
    access = []
    for scope, repository in scopes:
        granted = sorted(scope.actions & allowed_actions(user, scope, repository)) if scope.actions else []
        if "*" in scope.actions and scope.type == "repository":
            granted = sorted(allowed_actions(user, scope, repository))
        access.append({"type": scope.type, "name": scope.name, "actions": granted})
    ttl = settings.REGISTRY_TOKEN_SECONDS
    payload = {"u": user.pk if user is not None else None, "a": access}
    token = signing.dumps(payload, salt=_SALT, compress=True)
    issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"token": token, "access_token": token, "expires_in": ttl, "issued_at": issued}


def access_for_token(token: str) -> Access:
    """The access a bearer token carries; LoginFailed when it is forged, expired or its user gone."""
    try:
        payload = signing.loads(token, salt=_SALT, max_age=settings.REGISTRY_TOKEN_SECONDS)
    except signing.BadSignature:
        raise LoginFailed("invalid or expired token") from None
    user = None
    if payload.get("u") is not None:
        user = get_user_model()._default_manager.filter(pk=payload["u"], is_active=True).first()
        if user is None:
            raise LoginFailed("the token's user is no longer active")
    granted: dict[tuple[str, str], frozenset[str]] = {}
    for entry in payload.get("a") or []:
        key = (str(entry.get("type")), str(entry.get("name")))
        granted[key] = granted.get(key, frozenset()) | frozenset(str(a) for a in entry.get("actions") or [])
    return Access(user, granted)
