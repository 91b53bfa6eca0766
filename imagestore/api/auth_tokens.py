"""``Authorization: Token <key>`` against hashed tokens (imagestore.services.tokens), for the
REST API and the Docker API alike. Bad keys count against the client address's sign-in limit."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled

from .. import login_limit
from ..services.tokens import user_for_key

KEYWORD = "Token"


class HashedTokenAuthentication(BaseAuthentication):
    keyword = KEYWORD

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed(gettext("Invalid token header: send 'Token <key>'."))
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed(gettext("Invalid token header: the key is not ASCII.")) from None
        address = login_limit.client_address(request)
        if login_limit.is_locked(login_limit.TOKEN_USERNAME, address):
            raise Throttled(detail="Too many invalid tokens from this address; try again later.")
        found = user_for_key(key)
        if found is None:
            login_limit.record_failure(login_limit.TOKEN_USERNAME, address)
            raise AuthenticationFailed(gettext("Invalid, expired or revoked token."))
        return found

    def authenticate_header(self, request: Any) -> str:
        return self.keyword
