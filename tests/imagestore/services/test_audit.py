"""The audit trail: each door (browser form, REST, Docker API, admin, a job's worker) records
who did what from where, in the transaction of the change; a failure records its error, a
rolled-back change nothing; the trail is read through the API, the Audit page (CSV and JSON
Lines) and ``GET /events`` in Docker's format, and expires after AUDIT_RETENTION_DAYS."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.utils import timezone

from imagestore.models import AuditEvent, Image, Tag
from imagestore.services import audit, jobs
from imagestore.services.tag import tag_image
from imagestore.services.tokens import create_token
from tests.builders import simple_rootfs_tar

pytestmark = pytest.mark.django_db


def _events(action: str, after: int = 0) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, id__gt=after).order_by("id"))


def _mark() -> int:
    """The newest event's id: what a test's setup (make_image's import and tag) recorded."""
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_rest_door_records_tag_untag_delete_and_a_failure(make_image, operator) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    mark = _mark()
    _, key = create_token(operator, name="ci")
    api = Client(HTTP_AUTHORIZATION=f"Token {key}", REMOTE_ADDR="10.1.2.3")
    assert api.post(f"/api/v1/images/{image.id}/tag/", {"repository": "team/app:1"},
                    content_type="application/json").status_code in (200, 201)
    [tag] = [e for e in _events("tag", mark) if e.outcome == "ok"]
    assert (tag.username, tag.token_name, tag.interface, tag.address) == ("olive", "ci", "rest", "10.1.2.3")
    assert tag.object_id == image.id and tag.object_names == ["team/app:1"] and tag.outcome == "ok"
    bad = api.post(f"/api/v1/images/{image.id}/tag/", {"repository": "Bad Name"}, content_type="application/json")
    assert bad.status_code == 400
    assert api.delete("/api/v1/images/team/app:1/").status_code == 200
    [untag] = _events("untag", mark)
    assert untag.object_names == ["team/app:1"] and untag.object_id == image.id
    assert api.delete(f"/api/v1/images/{image.id}/").status_code == 200
    assert [e.object_id for e in _events("delete") if e.outcome == "ok"] == [image.id]
    [failed] = [e for e in _events("tag", mark) if e.outcome == "error"]
    assert "invalid reference format" in failed.error and failed.username == "olive"
    assert failed.object_names == ["Bad Name"] and failed.object_id == image.id


def test_browser_form_door_records_tag_and_rmi(make_image, operator) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    mark = _mark()
    browser = Client(REMOTE_ADDR="192.0.2.7")
    browser.force_login(operator)
    browser.post(f"/images/{image.short_id}/", {"action": "tag", "repository": "copy:1"})
    browser.post(f"/images/{image.short_id}/", {"action": "tag", "repository": "Bad Name"})
    browser.post(f"/images/{image.short_id}/", {"action": "remove", "force": "1"})
    [ok, failed] = _events("tag", mark)
    assert (ok.interface, ok.username, ok.address, ok.object_names) == ("browser", "olive", "192.0.2.7", ["copy:1"])
    assert failed.outcome == "error" and "invalid reference format" in failed.error
    assert {e.object_names[0] for e in _events("untag")} == {"centos:6.6", "copy:1"}
    assert [e.interface for e in _events("delete")] == ["browser"]
    assert not Image.objects.exists()


def test_admin_door_records_untag_and_rmi(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:1")
    tag_image(image, "busybox:2")
    mark = _mark()
    boss = User.objects.create_superuser("boss", password="pw")
    admin = Client()
    admin.force_login(boss)
    tag = Tag.objects.get(name="1")
    admin.post("/admin/imagestore/tag/", {"action": "untag", "_selected_action": [tag.pk]})
    admin.post("/admin/imagestore/image/", {"action": "remove_images", "_selected_action": [image.pk]})
    assert [(e.interface, e.username, e.object_names) for e in _events("untag", mark)] == [
        ("admin", "boss", ["busybox:1"]), ("admin", "boss", ["busybox:2"])]
    assert [(e.interface, e.object_id) for e in _events("delete")] == [("admin", image.id)]


def test_docker_api_door_and_a_job_carry_who_asked(operator, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    _, key = create_token(operator, name="laptop")
    docker = Client(HTTP_AUTHORIZATION=f"Token {key}")
    with django_capture_on_commit_callbacks() as callbacks:
        response = docker.post("/api/v1/images/import/", {"file": io.BytesIO(simple_rootfs_tar()), "repository": "imp:1"},
                               HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 202
    job_id = response.json()["id"]
    callbacks.clear()
    jobs.run_job(job_id)  # the worker's side: on behalf of the job's owner, through its door
    [event] = _events("import")
    image = Image.objects.get()
    assert (event.username, event.token_name, event.interface, str(event.job_id)) == ("olive", "laptop", "rest", job_id)
    assert event.object_id == image.id and event.object_names == ["imp:1"]
    assert docker.post(f"/docker/v1.47/images/{image.id}/tag?repo=dk&tag=2").status_code == 201
    assert docker.delete("/docker/v1.47/images/dk:2").status_code == 200
    assert [(e.action, e.interface, e.token_name) for e in AuditEvent.objects.filter(object_names=["dk:2"]).order_by("id")] == [
        ("tag", "docker", "laptop"), ("untag", "docker", "laptop")]


def test_a_rolled_back_change_records_nothing(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    mark = _mark()
    with pytest.raises(RuntimeError), transaction.atomic():
        tag_image(image, "gone:1")
        assert _events("tag", mark)
        raise RuntimeError("the caller's transaction fails after the tag")
    assert not Tag.objects.filter(name="1").exists() and not AuditEvent.objects.filter(id__gt=mark).exists()


def test_events_are_append_only_and_expire(make_image, settings) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    tag_image(Image.objects.get(), "a:1")
    event = _events("tag")[-1]
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()
    AuditEvent.objects.filter(pk=event.pk).update(time=timezone.now() - timedelta(days=40))
    assert audit.remove_expired(0) == 0 and audit.remove_expired(30) == 1
    assert not AuditEvent.objects.filter(pk=event.pk).exists() and _events("import")


def test_api_page_and_exports_filter_alike(make_image, operator, member, client_for) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    for n in range(3):
        tag_image(image, f"team/app:{n}")
    api = client_for(operator)
    rows = api.get("/api/v1/events/", {"action": "tag", "object": "team/app:1"}).json()["results"]
    assert [r["object_names"] for r in rows] == [["team/app:1"]]
    assert len(api.get("/api/v1/events/", {"action": "tag,import", "since": "1h"}).json()["results"]) == 5
    assert api.get("/api/v1/events/", {"object": image.id[7:19], "until": "1h"}).json()["results"] == []
    assert api.get("/api/v1/events/", {"since": "banana"}).status_code == 400
    assert client_for(member).get("/api/v1/events/").status_code == 403
    page = Client()
    page.force_login(operator)
    html = page.get("/audit/", {"action": "tag"}).content.decode()
    assert "team/app:2" in html and "Export CSV" in html
    exported = page.get("/audit/", {"action": "tag", "format": "csv"})
    assert exported["Content-Type"].startswith("text/csv") and exported.streaming
    table = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert sorted(r["object_names"] for r in table) == [json.dumps(["busybox:latest"])] + [
        json.dumps([f"team/app:{n}"]) for n in range(3)]
    lines = b"".join(page.get("/audit/", {"object": "team/app:0", "format": "jsonl"}).streaming_content).splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["tag"]
    assert page.get("/audit/", {"since": "banana"}).status_code == 200  # the form says what is wrong
    member_page = Client()
    member_page.force_login(member)
    assert member_page.get("/audit/").status_code == 403


def test_docker_events_stream_in_dockers_format(make_image, operator) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    tag_image(image, "web:1")
    docker = Client(HTTP_AUTHORIZATION=f"Token {create_token(operator)[1]}")
    now = f"{timezone.now().timestamp():.9f}"
    response = docker.get("/docker/v1.47/events", {"since": "1m", "until": now,
                                                   "filters": json.dumps({"event": {"tag": True}})})
    messages = [json.loads(line) for line in b"".join(response.streaming_content).split(b"\r\n") if line.strip()]
    assert [(m["Type"], m["Action"], m["Actor"]["ID"], m["Actor"]["Attributes"]["name"]) for m in messages] == [
        ("image", "tag", image.id, "busybox:latest"), ("image", "tag", image.id, "web:1")]
    assert messages[0]["timeNano"] // 1_000_000_000 == messages[0]["time"]
    by_image = docker.get("/docker/v1.47/events", {"since": "1m", "until": now,
                                                   "filters": json.dumps({"image": ["web"], "type": ["image"]})})
    actions = [json.loads(line)["Action"] for line in b"".join(by_image.streaming_content).split(b"\r\n") if line.strip()]
    assert actions == ["tag"]  # web:1; busybox:latest is another name
    assert docker.get("/docker/v1.47/events", {"filters": json.dumps({"nope": ["1"]})}).status_code == 400
    assert docker.get("/docker/v1.47/events", {"since": "yesterday"}).status_code == 400
