"""Who may change things: staff, or members of the ``operators`` group."""

from __future__ import annotations

from typing import Any

OPERATORS_GROUP = "operators"


def is_operator(user: Any) -> bool:
    if not (user and user.is_authenticated and user.is_active):
        return False
    if user.is_staff or user.is_superuser:
        return True
    return user.groups.filter(name=OPERATORS_GROUP).exists()
