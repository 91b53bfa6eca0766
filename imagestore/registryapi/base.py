"""Auth, errors and headers as the OCI Distribution Spec and Docker clients expect them."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ..errors import status_for
from ..models import Repository
from ..oci import distribution as spec
from ..services import registry_auth, registry_serve
from ..services.registry_auth import Access, LoginFailed

log = logging.getLogger(__name__)
API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")


def error_response(exc: spec.DistributionError, request: HttpRequest | None = None,
                   challenge: str | None = None) -> JsonResponse:
    response = JsonResponse(exc.body(), status=exc.status)
    response[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
    if challenge:
        response["WWW-Authenticate"] = challenge
    return response


def service_name(request: HttpRequest) -> str:
    return request.get_host()


def challenge_for(request: HttpRequest, scope: str | None = None, error: str | None = None) -> str:
    realm = request.build_absolute_uri("/v2/token")
    parts = [f'realm="{realm}"', f'service="{service_name(request)}"']
    if scope:
        parts.append(f'scope="{scope}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


def basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise LoginFailed("malformed Basic credentials") from None
    if not sep:
        raise LoginFailed("malformed Basic credentials")
    return username, password


def authenticate(request: HttpRequest) -> Access:
    """A bearer token from /v2/token, or Basic credentials (password or API token), or nobody."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return registry_auth.access_for_token(value.strip())
    credentials = basic_credentials(request)
    if credentials is not None:
        return Access(registry_auth.check_password(request, *credentials))
    return Access(None, granted={})


class NeedsAccess(Exception):
    """Raised by a view when the caller may not do what it asks."""

    def __init__(self, scope: str, *, denied: bool) -> None:
        super().__init__(scope)
        self.scope = scope
        self.denied = denied


def require(request: HttpRequest, scope_type: str, name: str, action: str,
            repository: Repository | None = None, *, ask: str | None = None) -> None:
    """``action`` on ``name``, or the spec's refusal: 401 with a challenge for the scope when a
    token (or nobody) has not asked for it yet, 403 DENIED when the user may not."""
    access: Access = request.registry_access  # type: ignore[attr-defined]
    if access.allows(scope_type, name, action, repository):
        return
    scope = f"{scope_type}:{name}:{ask or action}"
    signed_in = access.user is not None
    asked = access.granted is None or (scope_type, name) in access.granted
    raise NeedsAccess(scope, denied=signed_in and asked)


def registry_view(methods: tuple[str, ...], *, anonymous: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """Method check, auth and the spec's error bodies for one handler (CSRF does not apply:
    /v2/ is never cookie-authenticated, it has its own auth)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @csrf_exempt
        @wraps(fn)
        def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not settings.REGISTRY_API_ENABLED:
                return error_response(spec.Unsupported("the registry API is switched off (REGISTRY_API_ENABLED)",
                                                       status=404))
            if request.method not in methods:
                return error_response(spec.Unsupported(f"{request.method} is not allowed here"))
            try:
                request.registry_access = authenticate(request)  # type: ignore[attr-defined]
            except LoginFailed as exc:
                return error_response(spec.Unauthorized(str(exc)), challenge=challenge_for(request))
            try:
                if "name" in kwargs:
                    spec.check_name(kwargs["name"])
                response = fn(request, *args, **kwargs)
            except NeedsAccess as exc:
                if exc.denied:
                    # With the challenge too: a client holding a token for less (oras-py asks
                    # for the first challenge's scope only) asks again for this scope.
                    return error_response(spec.Denied("requested access to the resource is denied",
                                                      detail={"scope": exc.scope}),
                                          challenge=challenge_for(request, exc.scope, "insufficient_scope"))
                return error_response(spec.Unauthorized("authentication required", detail={"scope": exc.scope}),
                                      challenge=challenge_for(request, exc.scope))
            except spec.DistributionError as exc:
                return error_response(exc)
            except Exception as exc:
                status = status_for(exc)
                if status is None:
                    log.exception("registry API %s %s failed", request.method, request.path)
                    return error_response(spec.Unsupported(f"internal error: {exc.__class__.__name__}",
                                                           status=500))
                code: type[spec.DistributionError] = {404: spec.NameUnknown, 403: spec.Denied,
                                                      401: spec.Unauthorized, 413: spec.SizeInvalid,
                                                      409: spec.Denied}.get(status, spec.ManifestInvalid)
                return error_response(code(str(exc), status=status))
            response[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
            return response

        return view

    return wrap


def host(request: HttpRequest) -> str:
    return request.get_host()


def repository_of(request: HttpRequest, name: str) -> Repository | None:
    return registry_serve.find_repository(name, host(request))
