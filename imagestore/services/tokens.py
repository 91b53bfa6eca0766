"""API tokens: made with a key shown once, kept as its sha256, optionally expiring."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext

from ..errors import BadRequest
from ..models import ApiToken

KEY_PREFIX = "ims_"
# last_used_at is written at most this often per token, not on every request.
_TOUCH_EVERY = timedelta(minutes=1)


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def create_token(user: Any, *, name: str = "", expires_days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the key (the only time it exists in clear)."""
    if not (user and user.is_active):
        raise BadRequest(gettext("tokens are for active users"))
    if expires_days is not None and expires_days < 0:
        raise BadRequest(gettext("expires_days must be 0 (never) or more"))
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
    token = ApiToken.objects.create(user=user, name=name, prefix=key[:12], digest=digest_of(key),
                                    expires_at=expires_at)
    return token, key


def user_for_key(key: str) -> tuple[Any, ApiToken] | None:
    """The (active) user a key belongs to and its token row; None for an unknown, expired or
    disabled one. The lookup is by the key's hash, so timing says nothing about stored keys."""
    token = ApiToken.objects.select_related("user").filter(digest=digest_of(key)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token
