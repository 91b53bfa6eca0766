"""HTTP Basic auth (``curl -u``) without a full password hash on every request.

A password check is deliberately slow (PBKDF2, hundreds of thousands of rounds): scripts
sending Basic credentials on each call got 9 requests/s where a token got 169. So a
successful check is remembered for ``BASIC_AUTH_CACHE_SECONDS``:

- keyed by an HMAC (SECRET_KEY) of the username and password, so what is kept in memory
  cannot be turned back into the password nor matched without the key;
- a wrong password is never remembered (each try pays the full check);
- the remembered value holds the user's session auth hash (an HMAC of the stored password
  hash) and is checked against the user row read on every request, so a password change
  (or a deactivated user) ends it at once, in every process;
- a logout (``user_logged_out``) forgets the user's remembered checks;
- requests arriving together with the same credentials wait for one check, not one each.

The memory is per web process (a dict): nothing leaves the process, and a logout in one
process reaches the others only when their entries expire (at most the setting's seconds).
"""

from __future__ import annotations

import hmac
import threading
import time
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.utils.crypto import salted_hmac
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import AuthenticationFailed

from .. import login_limit

MAX_ENTRIES = 10_000  # a bound on memory; beyond it the oldest checks are forgotten


class _Check(NamedTuple):
    user_id: Any
    auth_hash: str  # the user's session auth hash when the password was checked
    expires: float  # time.monotonic()


_lock = threading.Lock()
_checks: dict[str, _Check] = {}  # insertion order is age order
_logouts = 0  # logouts seen: a check that was in flight during one is not kept
# One full check at a time per credentials: 16 clients starting at once with the same
# ``curl -u`` would otherwise pay 16 hashes (seconds of CPU) before the first is remembered.
_checking: dict[str, threading.Lock] = {}


def _key(username: str, password: str) -> str:
    # Length-prefixed, so no two (username, password) pairs give the same message.
    message = f"{len(username)}:{username}:{password}"
    return salted_hmac("imagestore.api.auth_basic", message, algorithm="sha256").hexdigest()


def forget_user(user_id: Any) -> None:
    global _logouts
    with _lock:
        _logouts += 1
        for key in [key for key, check in _checks.items() if check.user_id == user_id]:
            del _checks[key]


def forget_all() -> None:
    with _lock:
        _checks.clear()


@receiver(user_logged_out, dispatch_uid="imagestore.api.auth_basic.forget_on_logout")
def _forget_on_logout(sender: Any, user: Any = None, **kwargs: Any) -> None:
    if user is not None and user.pk is not None:
        forget_user(user.pk)


class CachedBasicAuthentication(BasicAuthentication):
    """DRF's BasicAuthentication, remembering a successful check briefly (see above)."""

    def authenticate_credentials(self, userid: str, password: str, request: Any = None) -> tuple[Any, None]:
        ttl = settings.BASIC_AUTH_CACHE_SECONDS
        if ttl <= 0:
            return super().authenticate_credentials(userid, password, request)
        if login_limit.is_locked(userid, login_limit.client_address(request)):
            # A locked sign-in stays locked for the window, remembered check or not.
            raise AuthenticationFailed(login_limit.locked_message())
        key = _key(userid, password)
        user = _remembered(key, userid)
        if user is not None:
            return (user, None)
        with _lock:
            gate = _checking.setdefault(key, threading.Lock())
        try:
            with gate:
                user = _remembered(key, userid)  # checked by the request we waited for
                if user is not None:
                    return (user, None)
                with _lock:
                    logouts = _logouts
                user, _ = super().authenticate_credentials(userid, password, request)  # raises when wrong
                with _lock:
                    if _logouts == logouts:  # else logged out meanwhile: checked, not remembered
                        _checks[key] = _Check(user.pk, user.get_session_auth_hash(), time.monotonic() + ttl)
                        while len(_checks) > MAX_ENTRIES:
                            del _checks[next(iter(_checks))]
                return (user, None)
        finally:
            with _lock:
                if not gate.locked():
                    _checking.pop(key, None)


def _remembered(key: str, username: str) -> Any:
    """The user a still-valid remembered check stands for, or None (then it is forgotten)."""
    with _lock:
        check = _checks.get(key)
    if check is None:
        return None
    if check.expires > time.monotonic():
        user = get_user_model()._default_manager.filter(pk=check.user_id).first()
        if (user is not None and user.is_active and user.get_username() == username
                and hmac.compare_digest(user.get_session_auth_hash(), check.auth_hash)):
            return user
    with _lock:
        if _checks.get(key) is check:
            del _checks[key]
    return None
