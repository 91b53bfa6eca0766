"""The project's 404 and 500 pages: the REST API and the Docker API answer in their own JSON
shape even where no view of theirs was reached (an unknown path, an error outside a view),
never with the HTML page meant for a browser."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

API_PREFIXES = ("/api/", "/v1/")
DOCKER_PREFIX = "/docker/"


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith(DOCKER_PREFIX):
        return JsonResponse({"message": "page not found"}, status=404)
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(DOCKER_PREFIX):
        return JsonResponse({"message": "internal server error"}, status=500)
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"detail": "internal error"}, status=500)
    return defaults.server_error(request)
