"""``GET /events`` (``docker events``): the audit trail's successful changes as Docker's event
stream (moby api/types/events.Message), past ones from ``since``, then live ones until
``until`` or until the client goes. Filters as Docker's: ``type``, ``event``, ``image``,
``container``, ``label``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from ..dockertime import TimeValueError, docker_time
from ..errors import BadRequest
from ..models import AuditEvent
from ..services.images import check_filter_names, time_value_message
from ..streams import StreamGuard
from .base import docker_view, filters, json_lines

EVENT_FILTERS = {"type", "event", "image", "container", "label", "scope"}
POLL_INTERVAL = 0.25
# Events are read again this far back on each poll: one committed late (its transaction began
# earlier) is still sent, once.
LATE_COMMIT = timedelta(seconds=5)


def _moment(request: HttpRequest, name: str) -> datetime | None:
    value = request.GET.get(name)
    if not value:
        return None
    try:
        moment = docker_time(value)
    except TimeValueError as exc:
        raise BadRequest(time_value_message(exc)) from None
    if name == "until" and value.strip().isdigit():
        # The CLI sends ``--until 0s`` as whole seconds (now, truncated): that second counts
        # whole, so what was done just now is shown.
        moment += timedelta(seconds=1) - timedelta(microseconds=1)
    return moment


def docker_message(event: AuditEvent) -> dict[str, Any]:
    attributes = dict(event.attributes or {})
    if event.object_type == "image" and "name" not in attributes and event.object_names:
        attributes["name"] = event.object_names[0]
    nanos = int(event.time.timestamp()) * 1_000_000_000 + event.time.microsecond * 1000
    message: dict[str, Any] = {
        "Type": event.object_type, "Action": event.action,
        "Actor": {"ID": event.object_id, "Attributes": attributes},
        "scope": "local", "time": nanos // 1_000_000_000, "timeNano": nanos,
    }
    if event.object_type in ("image", "container"):  # the fields older clients read
        message.update(status=event.action, id=event.object_id,
                       **({"from": attributes["image"]} if "image" in attributes else {}))
    return message


class _Matcher:
    def __init__(self, given: dict[str, list[str]]) -> None:
        check_filter_names(given, EVENT_FILTERS)
        self.types = set(given.get("type", []))
        self.actions = set(given.get("event", []))
        self.images = given.get("image", [])
        self.containers = given.get("container", [])
        self.labels = given.get("label", [])

    def query(self, since: datetime | None, until: datetime | None) -> Any:
        qs = AuditEvent.objects.filter(outcome=AuditEvent.Outcome.OK)
        if self.types:
            qs = qs.filter(object_type__in=self.types)
        if self.actions:
            qs = qs.filter(action__in=self.actions)
        if since is not None:
            qs = qs.filter(time__gte=since)
        if until is not None:
            qs = qs.filter(time__lte=until)
        return qs.order_by("time", "id")

    @staticmethod
    def _names_match(wanted: list[str], ident: str, names: list[str]) -> bool:
        for value in wanted:
            bare = value.removeprefix("sha256:")
            if ident == value or (bare and ident.removeprefix("sha256:").startswith(bare)):
                return True
            if value in names or any(n.split(":")[0] == value for n in names):
                return True
        return False

    def matches(self, event: AuditEvent) -> bool:
        attributes = event.attributes or {}
        names = [str(n) for n in event.object_names or []]
        if self.images:
            if event.object_type == "image":
                if not self._names_match(self.images, event.object_id, names):
                    return False
            elif event.object_type == "container":
                if not self._names_match(self.images, "", [str(attributes.get("image", ""))]):
                    return False
            else:
                return False
        if self.containers and (event.object_type != "container"
                                or not self._names_match(self.containers, event.object_id, names)):
            return False
        for label in self.labels:
            key, has_value, value = label.partition("=")
            if key not in attributes or (has_value and attributes[key] != value):
                return False
        return True


@docker_view(("GET",))
def events(request: HttpRequest) -> StreamingHttpResponse:
    since, until = _moment(request, "since"), _moment(request, "until")
    matcher = _Matcher(filters(request))
    guard = StreamGuard(request)
    start = timezone.now()

    def messages() -> Iterator[dict[str, Any] | None]:
        seen: dict[int, datetime] = {}
        floor = since if since is not None else start
        cursor = floor
        yield None  # the headers go now: the CLI waits for them before it shows anything
        while True:
            now = timezone.now()
            for event in matcher.query(max(floor, cursor - LATE_COMMIT), until):
                if event.id in seen:
                    continue
                seen[event.id] = event.time
                if matcher.matches(event):
                    guard.output()
                    yield docker_message(event)
            cursor = max([cursor, *seen.values()])
            for key in [k for k, t in seen.items() if t < cursor - 2 * LATE_COMMIT]:
                del seen[key]
            if until is not None and now >= until:
                return
            if guard.client_gone():
                return
            if guard.keepalive_due():
                guard.wrote()
                yield None
            time.sleep(POLL_INTERVAL)

    return json_lines(messages())
