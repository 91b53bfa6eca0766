"""Reading query-string switches the way Docker and DRF clients send them."""

from __future__ import annotations

import math
from typing import Any

from .errors import BadRequest

TRUE = ("1", "true", "yes", "on")


def flag(request: Any, name: str) -> bool:
    """``?force=1``, ``?all=true``: anything else, or nothing, is false.
    Works for Django's HttpRequest (``GET``) and DRF's Request (``query_params``)."""
    params = getattr(request, "query_params", None) or request.GET
    return str(params.get(name, "")).strip().lower() in TRUE


def seconds(params: Any, name: str, *, default: float, maximum: float) -> float:
    """A number of seconds (``?t=10``): a plain non-negative decimal no larger than
    ``maximum``. ``nan``, ``inf``, ``1e9``, ``-1`` are a 400 (BadRequest), never a wait that
    cannot end (``monotonic() > now + nan`` is never true)."""
    raw = params.get(name)
    if raw is None or str(raw).strip() == "":
        return default
    text = str(raw).strip()
    value = float(text) if text.isascii() and text.replace(".", "", 1).isdigit() else math.nan
    if not 0 <= value <= maximum:  # also false for nan
        raise BadRequest(f"{name} must be a number of seconds from 0 to {maximum:g}, not {text[:40]!r}")
    return value
