"""Failed sign-ins limited per username and client address.

Every password check goes through ``LimitedModelBackend`` (AUTHENTICATION_BACKENDS): the
sign-in page, the admin and HTTP Basic on the API. After LOGIN_FAILURE_LIMIT failures for
one username from one address within LOGIN_FAILURE_WINDOW seconds, that pair is refused,
right password or not, until the window (which starts at the first failure) ends. Bad API
tokens count the same way per address. The counters live in Django's cache (Redis when
the broker is Redis, so every worker process shares them).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError

log = logging.getLogger(__name__)
TOKEN_USERNAME = "\0token"  # the "username" bad API tokens are counted under


class LoginLocked(PermissionDenied):
    pass


def client_address(request: Any) -> str:
    # REMOTE_ADDR, not X-Forwarded-For: a client could write anything there. Behind a proxy
    # every client shares the proxy's address (see README "Security").
    meta = getattr(request, "META", None) or {}
    return str(meta.get("REMOTE_ADDR") or "")


def _key(username: str, address: str) -> str:
    return "login-failures:" + hashlib.sha256(f"{username.casefold()}\0{address}".encode()).hexdigest()


# The cache (Redis) being down must not stop every sign-in: the limiter then lets the
# password check decide alone, and says so in the log.
def is_locked(username: str, address: str) -> bool:
    try:
        return int(cache.get(_key(username, address)) or 0) >= settings.LOGIN_FAILURE_LIMIT
    except Exception as exc:
        log.warning("sign-in limiter unavailable (%s): not limiting", exc.__class__.__name__)
        return False


def record_failure(username: str, address: str) -> None:
    key = _key(username, address)
    try:
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW)
    except Exception as exc:
        log.warning("sign-in limiter unavailable (%s): failure not counted", exc.__class__.__name__)


def clear_failures(username: str, address: str) -> None:
    try:
        cache.delete(_key(username, address))
    except Exception as exc:
        log.warning("sign-in limiter unavailable (%s)", exc.__class__.__name__)


def locked_message() -> str:
    return (f"Too many failed sign-ins for this user from this address: try again in "
            f"{settings.LOGIN_FAILURE_WINDOW} seconds.")


class LimitedModelBackend(ModelBackend):
    def authenticate(self, request: Any, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> Any:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        address = client_address(request)
        if is_locked(username, address):
            # django.contrib.auth.authenticate() takes this as "no" without asking other backends.
            raise LoginLocked(locked_message())
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            record_failure(username, address)
        else:
            clear_failures(username, address)
        return user


class LimitedAuthenticationForm(AuthenticationForm):
    """The sign-in page's form, saying why when the limit is reached."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if username and is_locked(username, client_address(self.request)):
            raise ValidationError(locked_message(), code="locked")
        return super().clean()
