"""A container started through the browser form and through REST, by the real runc: each door
records its ``start`` (who, from where, which container) and, when the process ends, its ``die``.
(A failed action's error: tests/imagestore/services/test_audit.py; the docker CLI's door: tests/integration/test_docker_events.py;
the admin has no container actions.)"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from imagestore.models import AuditEvent, Container
from imagestore.services import containers as service

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _starts(container: Container) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="start", object_id=container.id).order_by("id"))


@pytest.mark.parametrize("door", ["browser", "rest"])
def test_each_door_records_container_start_and_die(busybox: Any, operator, door: str) -> None:  # type: ignore[no-untyped-def]
    container = service.create_container("busybox:static", cmd=["true"])
    client = Client(REMOTE_ADDR="192.0.2.9")
    client.force_login(operator)
    if door == "browser":
        response = client.post("/containers/", {"container": container.id, "action": "start"})
        assert response.status_code == 302
    else:
        response = client.post(f"/api/v1/containers/{container.id}/start/")
        assert response.status_code == 200, response.content
    service.wait_container(container, timeout=30)
    [start] = _starts(container)
    assert (start.interface, start.username, start.address, start.outcome) == (door, "olive", "192.0.2.9", "ok")
    assert start.object_names == [container.name]
    [die] = AuditEvent.objects.filter(action="die", object_id=container.id)
    assert die.outcome == "ok"

