"""The audit trail: one append-only AuditEvent per change through any door.

Who acts is a context (a contextvar) each door sets: the request middleware for the
browser, the REST API, the Docker API and the admin (imagestore.middleware.AuditMiddleware),
``manage.py`` commands (the process itself), a job's worker (the job's ``origin``: its owner
and the door it came through), a retention policy. Services record with ``record(...)``
inside the transaction of the change they make, so a rolled-back change records nothing.
``action(...)`` wraps an operation: when it fails, the outermost scope records the error
in a transaction of its own (after the change's transaction has rolled back).

Actions follow Docker's event vocabulary (``pull``, ``push``, ``tag``, ``untag``, ``delete``,
``import``, ``load``, ``save``, ``commit``, ``create``, ``start``, ``die``, ``destroy``,
``exec_start``, ``prune``, ...) plus ``login``, ``logout`` and ``policy_run``.
"""

from __future__ import annotations

import functools
import getpass
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar, cast

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from ..dockertime import TimeValueError, docker_time
from ..errors import BadRequest
from ..models import AuditEvent, Job
from ..oci.redact import redact_text
from .images import time_value_message

log = logging.getLogger(__name__)
MAX_ERROR = 4000
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Actor:
    """Who acts and through which door. ``request`` (a Django HttpRequest) is read lazily:
    DRF and the Docker API authenticate inside the view, after the middleware ran."""

    interface: str = AuditEvent.Interface.SYSTEM
    user: Any = None
    username: str = ""
    token_name: str = ""
    policy: str = ""
    address: str = ""
    job_id: Any = None
    request: Any = field(default=None, repr=False)

    def resolved(self) -> Actor:
        if self.request is None:
            return self
        request = self.request
        registry = getattr(request, "registry_access", None)  # /v2/: its own token or Basic auth
        user = (getattr(request, "docker_user", None) or getattr(registry, "user", None)
                or getattr(request, "user", None))
        if user is not None and not getattr(user, "is_authenticated", False):
            user = None
        token = getattr(request, "auth", None)
        return Actor(interface=self.interface, user=user, username=getattr(user, "username", "") or "",
                     token_name=str(getattr(token, "name", "") or "") if token is not None else "",
                     policy=self.policy, address=self.address, job_id=self.job_id)

    def origin(self) -> dict[str, Any]:
        """What a job keeps of its asker (its owner is the Job's own field)."""
        actor = self.resolved()
        return {"interface": actor.interface, "address": actor.address, "token_name": actor.token_name,
                "policy": actor.policy}


def _process_actor() -> Actor:
    """Outside any door: a ``manage.py`` command (the OS user running it) or the system."""
    if os.path.basename(sys.argv[0] if sys.argv else "") == "manage.py":
        try:
            who = getpass.getuser()
        except Exception:  # no such user in the passwd database (a container's uid)
            who = str(os.getuid())
        return Actor(interface=AuditEvent.Interface.COMMAND, username=f"{who} (shell)")
    return Actor()


_actor: ContextVar[Actor | None] = ContextVar("audit_actor", default=None)
_depth: ContextVar[int] = ContextVar("audit_depth", default=0)


def current() -> Actor:
    return (_actor.get() or _process_actor()).resolved()


@contextmanager
def acting(actor: Actor) -> Iterator[Actor]:
    """Everything recorded inside is done by ``actor``."""
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def for_request(request: Any, interface: str) -> Actor:
    return Actor(interface=interface, address=str(request.META.get("REMOTE_ADDR") or "")[:64], request=request)


def for_job(job: Job) -> Actor:
    origin = job.origin or {}
    owner = job.owner
    return Actor(interface=origin.get("interface") or AuditEvent.Interface.SYSTEM, user=owner,
                 username=getattr(owner, "username", "") or "", token_name=origin.get("token_name", ""),
                 policy=origin.get("policy", ""), address=origin.get("address", ""), job_id=job.id)


def for_policy(name: str, job: Job | None = None) -> Actor:
    return Actor(interface=AuditEvent.Interface.POLICY, policy=name, username=f"policy {name}",
                 job_id=job.id if job is not None else None)


def _text(value: Any, limit: int) -> str:
    """Text PostgreSQL can store (no NUL, whatever the request held), at most ``limit`` long."""
    return str(value).replace("\x00", "\\0")[:limit]


def _event(action: str, object_type: str, object_id: str, names: list[str] | tuple[str, ...],
           attributes: dict[str, Any] | None, error: str = "", user: Any = None) -> AuditEvent:
    actor = current()
    if user is not None:
        actor.user, actor.username = user, getattr(user, "username", "") or ""
    user = actor.user if getattr(actor.user, "pk", None) else None
    return AuditEvent(
        time=timezone.now(), user=user, username=_text(actor.username, 150), token_name=_text(actor.token_name, 255),
        policy=_text(actor.policy, 255), interface=actor.interface, address=_text(actor.address, 64), action=action,
        object_type=object_type, object_id=_text(object_id, 255), object_names=[_text(n, 1024) for n in names],
        attributes={_text(k, 255): _text(v, 4000) for k, v in (attributes or {}).items()},
        outcome=AuditEvent.Outcome.ERROR if error else AuditEvent.Outcome.OK, error=_text(error, MAX_ERROR),
        job_id=actor.job_id,
    )


def record(action: str, *, object_type: str = "image", object_id: str = "",
           names: list[str] | tuple[str, ...] = (), attributes: dict[str, Any] | None = None,
           user: Any = None) -> AuditEvent:
    """One successful change, written in the caller's transaction (call it inside the change's).
    ``user``: who, when the door does not know yet (a sign-in)."""
    event = _event(action, object_type, object_id, names, attributes, user=user)
    event.save()
    _notify([event])
    return event


def record_many(events: list[tuple[str, dict[str, Any]]]) -> None:
    """Several ``(action, record keywords)`` in one insert."""
    if events:
        _notify(AuditEvent.objects.bulk_create([
            _event(action, kw.get("object_type", "image"), kw.get("object_id", ""), kw.get("names", ()),
                   kw.get("attributes")) for action, kw in events
        ]))


def _notify(events: list[AuditEvent]) -> None:
    from .webhooks import notify_on_commit

    notify_on_commit(events)


def record_failure(action: str, exc: BaseException | str, *, object_type: str = "image", object_id: str = "",
                   names: list[str] | tuple[str, ...] = (), attributes: dict[str, Any] | None = None) -> None:
    """A failed action's event, in a transaction (a savepoint) of its own. Never raises: the
    action's own error is what the caller must see, whatever happens to its record."""
    message = redact_text(str(exc) or exc.__class__.__name__)
    try:
        with transaction.atomic():
            event = _event(action, object_type, object_id, names, attributes, error=message)
            event.save()
            _notify([event])
    except Exception as failure:  # a database that is down or holds no audit table yet
        log.warning("the failure of %s was not recorded in the audit trail: %s", action, failure)


def _signed_in(sender: Any, request: Any = None, user: Any = None, **_kwargs: Any) -> None:
    record("login", object_type="user", object_id=str(getattr(user, "pk", "")), names=[user.username], user=user)


def _signed_out(sender: Any, request: Any = None, user: Any = None, **_kwargs: Any) -> None:
    if user is not None:
        record("logout", object_type="user", object_id=str(user.pk), names=[user.username], user=user)


def _sign_in_failed(sender: Any, credentials: dict[str, Any] | None = None, request: Any = None,
                    **_kwargs: Any) -> None:
    username = str((credentials or {}).get("username") or "")[:150]
    record_failure("login", "wrong username or password, or a locked sign-in", object_type="user",
                   names=[username] if username else [])


def connect_signals() -> None:
    """Dashboard sign-ins and sign-outs (pages and admin) are events too."""
    from django.contrib.auth import signals

    signals.user_logged_in.connect(_signed_in, dispatch_uid="audit-login")
    signals.user_logged_out.connect(_signed_out, dispatch_uid="audit-logout")
    signals.user_login_failed.connect(_sign_in_failed, dispatch_uid="audit-login-failed")


@contextmanager
def action(name: str, *, object_type: str = "image", object_id: str = "",
           names: list[str] | tuple[str, ...] = (), attributes: dict[str, Any] | None = None) -> Iterator[None]:
    """Run one operation; if it fails, its error is recorded once (by the outermost scope:
    a pull's tag failing is the pull's failure), after its own transaction rolled back."""
    depth = _depth.get()
    token = _depth.set(depth + 1)
    try:
        yield
    except Exception as exc:
        _depth.reset(token)
        if depth == 0:
            record_failure(name, exc, object_type=object_type, object_id=object_id, names=names,
                           attributes=attributes)
        raise
    except BaseException:  # SystemExit, a generator closed: not the operation's failure
        _depth.reset(token)
        raise
    else:
        _depth.reset(token)


# --- reading -----------------------------------------------------------------------------------

@dataclass
class EventFilters:
    who: str = ""  # a username, token name or policy (exact, case-insensitive)
    action: list[str] = field(default_factory=list)
    object: str = ""  # an id (or its prefix, sha256: optional) or a name (substring)
    interface: str = ""
    outcome: str = ""
    since: Any = None
    until: Any = None


FILTER_PARAMETERS = ("who", "action", "object", "interface", "outcome", "since", "until")


def filters_from(params: Any) -> EventFilters:
    """EventFilters from a query string (REST, the Audit page, its exports): ``action`` may be
    repeated or comma-separated; ``since`` and ``until`` take Docker's time forms (``1h``,
    RFC 3339, Unix time). A bad value is a BadRequest naming its parameter."""
    def one(name: str) -> str:
        value = str(params.get(name) or "").strip()
        if len(value) > 255 or "\x00" in value:
            raise BadRequest(gettext("%(name)s must be at most 255 characters") % {"name": name}, field=name)
        return value

    actions = [a.strip() for value in params.getlist("action") for a in str(value).split(",") if a.strip()]
    if any(len(a) > 32 or "\x00" in a for a in actions):
        raise BadRequest(gettext("action names are at most 32 characters"), field="action")
    out = EventFilters(who=one("who"), action=actions, object=one("object"), interface=one("interface"),
                       outcome=one("outcome"))
    if out.interface and out.interface not in AuditEvent.Interface.values:
        raise BadRequest(gettext("interface must be one of %(choices)s")
                         % {"choices": ", ".join(AuditEvent.Interface.values)}, field="interface")
    if out.outcome and out.outcome not in AuditEvent.Outcome.values:
        raise BadRequest(gettext("outcome must be ok or error"), field="outcome")
    for name in ("since", "until"):
        value = one(name)
        if value:
            try:
                setattr(out, name, docker_time(value))
            except TimeValueError as exc:
                raise BadRequest(gettext("%(name)s: %(problem)s") % {"name": name, "problem": time_value_message(exc)},
                                 field=name) from None
    return out


def events(filters: EventFilters) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.all()
    if filters.who:
        qs = qs.filter(Q(username__iexact=filters.who) | Q(token_name__iexact=filters.who)
                       | Q(policy__iexact=filters.who))
    if filters.action:
        qs = qs.filter(action__in=filters.action)
    if filters.object:
        text = filters.object.strip()
        hexpart = text.removeprefix("sha256:")
        q = Q(object_names__icontains=text)
        if hexpart:
            q |= Q(object_id__startswith=text) | Q(object_id__startswith=f"sha256:{hexpart}")
        qs = qs.filter(q)
    if filters.interface:
        qs = qs.filter(interface=filters.interface)
    if filters.outcome:
        qs = qs.filter(outcome=filters.outcome)
    if filters.since is not None:
        qs = qs.filter(time__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(time__lte=filters.until)
    return qs.order_by("-time", "-id")


EXPORT_FIELDS = ["id", "time", "username", "token_name", "policy", "interface", "address", "action",
                 "object_type", "object_id", "object_names", "attributes", "outcome", "error", "job_id"]


def event_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id, "time": event.time.isoformat(), "username": event.username, "token_name": event.token_name,
        "policy": event.policy, "interface": event.interface, "address": event.address, "action": event.action,
        "object_type": event.object_type, "object_id": event.object_id, "object_names": event.object_names,
        "attributes": event.attributes, "outcome": event.outcome, "error": event.error,
        "job_id": str(event.job_id) if event.job_id else None,
    }


def remove_expired(days: int) -> int:
    """Retention: events older than ``days`` go (0 keeps everything). Returns how many went."""
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = AuditEvent.objects.filter(time__lt=cutoff).delete()
    return deleted


def audited(name: str, *, object_type: str = "image",
            describe: Callable[..., dict[str, Any]] | None = None) -> Callable[[F], F]:
    """``action(...)`` around a whole service function; ``describe(*args, **kwargs)`` names its
    object for a failure (``object_id``, ``names``)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            about: dict[str, Any] = {}
            if describe is not None:
                try:
                    about = describe(*args, **kwargs)
                except Exception:  # naming the object must never hide the operation's own error
                    about = {}
            with action(name, object_type=object_type, **about):
                return fn(*args, **kwargs)

        return cast(F, run)

    return wrap


def container_object(container: Any, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
    return {"object_id": container.id, "names": [container.name]}


def container_attributes(container: Any, **extra: Any) -> dict[str, Any]:
    """Docker's container event attributes: its image and name (and the labels it has none of)."""
    return {"image": (container.config or {}).get("Image") or container.image_id, "name": container.name, **extra}
