"""The docker CLI's door in the audit trail, and ``docker events``: pull, import, tag, rmi and
a container's create, start and die through the CLI are recorded as the token's user from
the docker interface; a tag made through the REST API shows in ``docker events --since 1m
--until 0s --filter event=tag``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from imagestore.models import AuditEvent
from tests.builders import busybox_rootfs, tar_directory
from tests.integration.test_docker_cli import dashboard, docker, docker_cli, mirror  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_docker_cli_door_and_docker_events(docker, dashboard: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    docker("pull", "centos")
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    imported = docker("import", "-", "tools:1", stdin=tar_directory(rootfs, "gzip")).stdout.strip()
    docker("tag", "tools:1", "tools:2")
    docker("rmi", "tools:2")
    docker("create", "--name", "ev1", "tools:1", "true")
    docker("start", "ev1")
    assert docker("wait", "ev1").stdout.strip() == "0"

    def one(action: str, **match: object) -> AuditEvent:
        found = [e for e in AuditEvent.objects.filter(action=action, outcome="ok").order_by("id")
                 if all(getattr(e, k) == v for k, v in match.items())]
        assert found, f"no {action} event matching {match}"
        return found[-1]

    pull = one("pull")
    assert pull.object_names == ["centos:latest"] and pull.username == "olive" and pull.interface == "docker"
    assert pull.token_name == "docker cli test" and pull.job_id is not None
    assert one("import").object_id == imported and one("import").object_names == ["tools:1"]
    assert one("tag", object_names=["tools:2"]).interface == "docker"
    assert one("untag", object_names=["tools:2"]).interface == "docker"
    started = one("start")
    assert started.object_names == ["ev1"] and started.attributes["image"] == "tools:1"
    assert started.interface == "docker" and started.username == "olive"
    assert one("create", object_id=started.object_id).interface == "docker"
    assert one("die", object_id=started.object_id).attributes["exitCode"] == "0"

    # A tag through the REST API, seen by `docker events`.
    api = requests.Session()
    api.headers["Authorization"] = f"Token {docker.token}"
    response = api.post(f"{dashboard}/api/v1/images/tools:1/tag/", json={"repository": "viarest:1"}, timeout=30)
    assert response.status_code in (200, 201), response.text
    shown = docker("events", "--since", "1m", "--until", "0s", "--filter", "event=tag",
                   "--format", "{{json .}}").stdout
    messages = [json.loads(line) for line in shown.splitlines() if line.strip()]
    assert {"viarest:1", "tools:2", "centos:latest"} <= {m["Actor"]["Attributes"]["name"] for m in messages}
    assert {m["Action"] for m in messages} == {"tag"} and {m["Type"] for m in messages} == {"image"}
    text = docker("events", "--since", "1m", "--until", "0s", "--filter", "event=tag",
                  "--filter", "image=viarest").stdout
    assert "image tag" in text and "viarest:1" in text and "tools:2" not in text
