"""Refusing uploads before their bodies are read.

Django parses a multipart body lazily, on the first access to ``request.POST`` or
``request.FILES``, writing files past FILE_UPLOAD_MAX_MEMORY_SIZE into the uploads folder;
CsrfViewMiddleware reads ``request.POST`` for every POST it checks, and DRF's session
authentication does the same. So whoever sends a body must be known to be an operator
before any of them runs: this middleware sits before CsrfViewMiddleware and decides from
the headers alone (session cookie, ``Authorization: Token``/``Basic``), then checks the
declared size. The upload handler keeps counting while the body streams.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import APIException
from rest_framework.settings import api_settings

from .errors import TooLarge
from .permissions import is_operator

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
# Routes that take an upload as their body. Elsewhere a multipart form's fields are read
# (bounded by DATA_UPLOAD_MAX_MEMORY_SIZE) but a file part is refused by UploadLimitHandler.
UPLOAD_ROUTES = frozenset({"ui-import", "ui-load", "image-import", "image-load", "container-archive"})


def _interface(request: HttpRequest) -> str:
    path = request.path_info
    if path.startswith("/docker/"):
        return "docker"
    if path.startswith("/api/"):
        return "api"
    return "page"


def _takes_upload(request: HttpRequest) -> bool:
    if request.method in SAFE_METHODS:
        return False
    match = request.resolver_match
    if match is not None and match.url_name in UPLOAD_ROUTES:
        return True
    # Every change through the Docker API needs an operator's token anyway; its raw bodies
    # (import, load, copy in) are streamed to disk by the views.
    return _interface(request) == "docker" and settings.DOCKER_API_ENABLED


def _declared_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def request_user(request: HttpRequest) -> Any:
    """The session's user, else whoever the API's header authentication names; None if nobody."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    # The API's own list (imported classes), so a change there applies here too.
    classes = cast("list[type[BaseAuthentication]]", api_settings.DEFAULT_AUTHENTICATION_CLASSES)
    for auth_class in classes:
        if issubclass(auth_class, SessionAuthentication):
            continue  # the session is request.user above
        found = auth_class().authenticate(request)  # type: ignore[arg-type]  # header schemes read META alone
        if found is not None:
            return found[0]
    return None


def _refuse(request: HttpRequest, status: int, message: str) -> HttpResponse:
    interface = _interface(request)
    response: HttpResponse
    if interface == "docker":
        response = JsonResponse({"message": message}, status=status)
    elif interface == "api":
        response = JsonResponse({"detail": message}, status=status)
        if status == 401:
            response["WWW-Authenticate"] = 'Token realm="api"'
    else:
        response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    return response


class UploadGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, args: Any, kwargs: Any) -> HttpResponse | None:
        if not _takes_upload(request):
            return None
        try:
            user = request_user(request)
        except APIException as exc:  # a wrong token or password, or too many of them
            return _refuse(request, exc.status_code, str(exc.detail))
        interface = _interface(request)
        if user is None:
            return _refuse(request, 401 if interface != "page" else 403,
                           "authentication required: uploads need an operator's session, token or password")
        if not is_operator(user):
            return _refuse(request, 401 if interface == "docker" else 403,
                           "uploads need staff or the operators group")
        limit = settings.IMAGESTORE_MAX_UPLOAD_SIZE
        if _declared_length(request) > limit:
            return _refuse(request, 413, f"the upload is larger than IMAGESTORE_MAX_UPLOAD_SIZE ({limit} bytes)")
        request.upload_allowed = True  # type: ignore[attr-defined]
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, TooLarge):
            return _refuse(request, 413, str(exception))
        return None


class UploadLimitHandler(FileUploadHandler):
    """First of FILE_UPLOAD_HANDLERS: no file of a multipart body is stored unless the guard
    let the request in (a form elsewhere keeps its fields), and none grows past
    IMAGESTORE_MAX_UPLOAD_SIZE while it streams."""

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.received = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        # Called before the handlers after it (memory, temporary file) see the file part.
        if self.request is not None and not getattr(self.request, "upload_allowed", False):
            raise PermissionDenied(gettext("uploads need staff or the operators group, on an upload page or "
                                           "endpoint"))
        super().new_file(*args, **kwargs)

    def handle_raw_input(self, input_data: Any, META: Any, content_length: int, boundary: Any,
                         encoding: Any = None) -> None:
        if content_length > settings.IMAGESTORE_MAX_UPLOAD_SIZE:
            raise TooLarge(gettext("the upload is larger than IMAGESTORE_MAX_UPLOAD_SIZE "
                                   "(%(IMAGESTORE_MAX_UPLOAD_SIZE)s bytes)")
                           % {"IMAGESTORE_MAX_UPLOAD_SIZE": settings.IMAGESTORE_MAX_UPLOAD_SIZE})
        return None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > settings.IMAGESTORE_MAX_UPLOAD_SIZE:
            raise TooLarge(gettext("the upload is larger than IMAGESTORE_MAX_UPLOAD_SIZE "
                                   "(%(IMAGESTORE_MAX_UPLOAD_SIZE)s bytes)")
                           % {"IMAGESTORE_MAX_UPLOAD_SIZE": settings.IMAGESTORE_MAX_UPLOAD_SIZE})
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
