"""Reading query-string switches the way Docker and DRF clients send them."""

from __future__ import annotations

from typing import Any

TRUE = ("1", "true", "yes", "on")


def flag(request: Any, name: str) -> bool:
    """``?force=1``, ``?all=true``: anything else, or nothing, is false.
    Works for Django's HttpRequest (``GET``) and DRF's Request (``query_params``)."""
    params = getattr(request, "query_params", None) or request.GET
    return str(params.get(name, "")).strip().lower() in TRUE
