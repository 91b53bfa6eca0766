"""Every API error is JSON ``{"detail": "..."}`` with the status its cause means, in the
request's language (Accept-Language; DRF's own messages come with DRF's catalogue)."""

from __future__ import annotations

import logging
from typing import Any

from django.utils.translation import gettext
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..errors import status_for, user_message

log = logging.getLogger(__name__)


def _summary(data: Any, prefix: str = "") -> list[str]:
    if isinstance(data, dict):
        out = []
        for key, value in data.items():
            name = "" if key == "non_field_errors" else f"{prefix}{key}"
            out += _summary(value, f"{name}: " if name else "")
        return out
    if isinstance(data, list):
        return [line for item in data for line in _summary(item, prefix)]
    return [f"{prefix}{data}"]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    status = status_for(exc)
    if status is not None:
        return Response({"detail": user_message(exc)}, status=status)
    if isinstance(exc, exceptions.ValidationError):
        return Response({"detail": "; ".join(_summary(exc.detail)), "errors": exc.detail}, status=400)
    response = drf_exception_handler(exc, context)
    if response is None:
        log.exception("unexpected error in %s", context.get("view").__class__.__name__)
        return Response({"detail": gettext("internal error: %(kind)s") % {"kind": exc.__class__.__name__}},
                        status=500)
    return response
