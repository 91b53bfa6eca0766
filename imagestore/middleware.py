"""Request middleware: every request acts as its signed-in user through its door, for the
audit trail (services.audit). The user is read when an event is recorded, so DRF's token
and basic authentication and the Docker API's token (both inside the view) count."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .models import AuditEvent
from .services import audit

DOORS = (("/docker/", AuditEvent.Interface.DOCKER), ("/api/", AuditEvent.Interface.REST),
         ("/admin/", AuditEvent.Interface.ADMIN), ("/v2/", AuditEvent.Interface.REGISTRY))


def interface_of(path: str) -> str:
    for prefix, interface in DOORS:
        if path.startswith(prefix) or path == prefix.rstrip("/"):
            return interface
    return AuditEvent.Interface.BROWSER


class AuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with audit.acting(audit.for_request(request, interface_of(request.path_info))):
            return self.get_response(request)
