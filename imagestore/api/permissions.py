from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission

from ..permissions import is_operator


class IsOperatorOrReadOnly(BasePermission):
    """Reading needs a signed-in user; changing anything needs an operator."""

    message = "Changing images and jobs needs staff or the operators group."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            return True
        return is_operator(user)


class IsOperator(BasePermission):
    """Housekeeping, reading included (paths and findings of the data root): operators only."""

    message = "Housekeeping needs staff or the operators group."

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_operator(request.user)
