"""Small helpers for the pages' templates: state colours, size bars, the pages' querystrings."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

register = template.Library()

# Bootstrap's contextual colours for a job's and a container's states.
JOB_STATES = {"queued": "secondary", "running": "primary", "succeeded": "success", "failed": "danger",
              "cancelled": "warning"}
CONTAINER_STATES = {"created": "secondary", "running": "success", "paused": "warning", "restarting": "info",
                    "removing": "warning", "exited": "secondary", "dead": "danger"}
STATE_ICONS = {"queued": "hourglass", "running": "play-circle", "succeeded": "check-circle", "failed": "x-circle",
               "cancelled": "slash-circle", "created": "circle", "paused": "pause-circle", "restarting": "arrow-repeat",
               "exited": "stop-circle", "dead": "exclamation-octagon", "removing": "trash"}


@register.filter
def job_colour(state: str) -> str:
    return JOB_STATES.get(state, "secondary")


@register.filter
def container_colour(container: Any) -> str:
    state = getattr(container, "state", container)
    if state == "exited" and getattr(container, "exit_code", 0):
        return "danger"
    return CONTAINER_STATES.get(state, "secondary")


@register.filter
def state_icon(state: str) -> str:
    return STATE_ICONS.get(state, "circle")


@register.filter
def percent(part: Any, whole: Any) -> str:
    """``part`` as a percentage of ``whole`` for a bar's width: "37.5" (never past 0-100)."""
    try:
        value = 100.0 * float(part or 0) / float(whole or 0)
    except (TypeError, ValueError, ZeroDivisionError):
        return "0"
    return f"{max(0.0, min(100.0, value)):.1f}"


@register.simple_tag(takes_context=True)
def query(context: dict[str, Any], **changes: Any) -> str:
    """The page's querystring with ``changes`` applied (None removes a key): ``?{% query page=2 %}``."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return urlencode(sorted(params.lists()), doseq=True)


# What a job, a job's state and a container's state are called on the pages (a kind another
# issue adds without a label here is shown capitalised).
KIND_LABELS = {"import": _("Import"), "pull": _("Pull"), "push": _("Push"), "save": _("Save"), "load": _("Load"),
               "commit": _("Commit"), "gc": _("Garbage collection"), "fsck": _("Store check"),
               "retention": _("Retention policy")}
STATE_LABELS = {"queued": _("queued"), "running": _("running"), "succeeded": _("succeeded"), "failed": _("failed"),
                "cancelled": _("cancelled"), "created": _("created"), "paused": _("paused"),
                "restarting": _("restarting"), "removing": _("removing"), "exited": _("exited"), "dead": _("dead")}


# The phases services report (imagestore/services: progress.update(..., phase)), stored in
# English as Docker prints them (the REST API shows them so) and shown in the page's language.
PHASE_LABELS = {"Waiting": _("Waiting"), "Downloading": _("Downloading"), "Verifying Checksum": _("Verifying Checksum"),
                "Download complete": _("Download complete"), "Pull complete": _("Pull complete"),
                "Already exists": _("Already exists"), "Importing": _("Importing"),
                "Import complete": _("Import complete"), "Reading archive": _("Reading archive"),
                "Verified": _("Verified"), "Loaded": _("Loaded"), "Saving": _("Saving"), "Saved": _("Saved"),
                "Preparing": _("Preparing"), "Pushing": _("Pushing"), "Pushed": _("Pushed"),
                "Layer already exists": _("Layer already exists"), "Committing": _("Committing"),
                "Committed": _("Committed"), "Verifying": _("Verifying")}


@register.filter
def phase_label(phase: str) -> str:
    text = str(phase or "")
    if text.startswith("Mounted from "):
        return str(_("Mounted from %(repository)s")) % {"repository": text[len("Mounted from "):]}
    return str(PHASE_LABELS.get(text, text))


@register.filter
def job_kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, str(kind).capitalize()))


@register.filter
def state_label(state: str) -> str:
    return str(STATE_LABELS.get(state, state))


@register.filter
def job_subject(job: Any) -> str:
    """What a job works on, in a few words: the reference pulled, the names saved..."""
    params = getattr(job, "params", None) or {}
    for key in ("reference", "repository", "image", "container"):
        if params.get(key):
            return str(params[key])
    if params.get("images"):
        return ", ".join(str(name) for name in params["images"])
    result = getattr(job, "result", None) or {}
    return str(result.get("short_id") or result.get("image") or "")


@register.filter
def job_done(job: Any) -> int:
    """Bytes done over every item of a job's progress."""
    return sum(int((p or {}).get("current") or 0) for p in (getattr(job, "progress", None) or {}).values())


@register.filter
def job_total(job: Any) -> int:
    """Bytes to do over every item (0 while some item's total is not known yet)."""
    items = list((getattr(job, "progress", None) or {}).values())
    if not items or any(not (p or {}).get("total") for p in items):
        return 0
    return sum(int(p["total"]) for p in items)
