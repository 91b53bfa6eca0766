"""The sidebar: one entry per section, marked active for the pages under it.

A new page belongs to a section by its URL name: an entry's ``prefixes`` are the URL names
(or beginnings of them) of its pages, and the longest match wins, so ``ui-image-files``
lights Images, ``ui-container`` Containers. To add a section, add an entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Section:
    url_name: str
    label: str | Promise
    icon: str  # a Bootstrap Icons name: https://icons.getbootstrap.com/
    prefixes: tuple[str, ...]
    staff_only: bool = False
    external: str = ""  # a path outside the ui app (the admin)


SIDEBAR: list[Section] = [
    Section("ui-overview", _("Overview"), "speedometer2", ("ui-overview",)),
    Section("ui-images", _("Images"), "layers", ("ui-image", "ui-push")),
    Section("ui-containers", _("Containers"), "box", ("ui-container",)),
    Section("ui-pull", _("Pull"), "cloud-download", ("ui-pull",)),
    Section("ui-import", _("Import/Load"), "upload", ("ui-import", "ui-load")),
    Section("ui-search", _("Search"), "search", ("ui-search",)),
    Section("ui-registries", _("Registries"), "hdd-network", ("ui-registr",)),
    Section("ui-repositories", _("Repositories"), "archive", ("ui-repositor",)),
    Section("ui-jobs", _("Jobs"), "list-task", ("ui-job",)),
    Section("ui-audit", _("Audit"), "journal-text", ("ui-audit",), staff_only=True),
    Section("ui-retention", _("Retention"), "calendar-x", ("ui-retention",), staff_only=True),
    Section("ui-webhooks", _("Webhooks"), "broadcast", ("ui-webhook",), staff_only=True),
    Section("", _("Admin"), "gear", (), staff_only=True, external="/admin/"),
]


def _active(url_name: str) -> str:
    best = ""
    for section in SIDEBAR:
        for prefix in section.prefixes:
            if url_name.startswith(prefix) and len(prefix) > len(best):
                best = prefix
    return next((s.url_name for s in SIDEBAR if best and best in s.prefixes), "")


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Context processor: ``sidebar`` (the entries this user sees, one marked active) and
    ``now_iso`` (where the job toasts start watching from)."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"sidebar": []}
    now_iso = timezone.now().isoformat()
    match = getattr(request, "resolver_match", None)
    active = _active(match.url_name or "") if match else ""
    return {"now_iso": now_iso, "sidebar": [
        {"url": section.external or reverse(section.url_name), "label": section.label, "icon": section.icon,
         "active": bool(section.url_name) and section.url_name == active}
        for section in SIDEBAR if not section.staff_only or request.user.is_staff
    ]}
