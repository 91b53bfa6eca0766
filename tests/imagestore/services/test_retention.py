"""Retention policies: the preview lists exactly what a run removes, the run removes exactly
that, and the bytes freed are what ``docker system df``'s LayersSize drops by; every rule
(keep_last, keep_tags, keep_label, unused_for, untagged_older_than) and the REST API."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from imagestore.models import AuditEvent, Image, RepoDigest, RetentionPolicy, Tag
from imagestore.oci.reference import parse_normalized
from imagestore.services import jobs, retention
from imagestore.services.import_ import import_image
from imagestore.services.repositories import get_or_create_repository
from imagestore.services.tokens import create_token
from tests.builders import simple_rootfs_tar

pytestmark = pytest.mark.django_db


def _image(marker: str, name: str | None, *labels: str) -> Image:
    return import_image(io.BytesIO(simple_rootfs_tar(marker)), repository=name,
                        changes=[f"LABEL {label}" for label in labels])


def test_keep_5_of_12_previews_the_7_oldest_and_the_run_removes_exactly_those(
        operator, client_for, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    images = [_image(f"app-{n}", f"team/app:{n}") for n in range(12)]
    other = _image("other", "other/app:1")
    api = client_for(operator)
    made = api.post("/api/v1/retention-policies/", {"name": "keep5", "repository": "team/*", "keep_last": 5},
                    format="json")
    assert made.status_code == 201, made.json()
    docker = Client(HTTP_AUTHORIZATION=f"Token {create_token(operator)[1]}")
    df_before = docker.get("/docker/v1.47/system/df").json()["LayersSize"]
    preview = api.post(f"/api/v1/retention-policies/{made.json()['id']}/preview/").json()
    assert preview["untag"] == [f"team/app:{n}" for n in range(6, -1, -1)]  # newest of the removed first
    assert sorted(preview["delete"]) == sorted(i.id for i in images[:7])
    assert preview["bytes_freed"] > 0 and preview["kept"] == []
    assert Image.objects.count() == 13 and not AuditEvent.objects.filter(action__in=["untag", "policy_run"]).exists()

    with django_capture_on_commit_callbacks(execute=False):
        job = api.post(f"/api/v1/retention-policies/{made.json()['id']}/run/").json()
    with django_capture_on_commit_callbacks(execute=True):
        finished = jobs.run_job(job["id"])
    assert finished is not None and finished.state == "succeeded", finished.error
    assert finished.result["untag"] == preview["untag"] and finished.result["delete"] == preview["delete"]
    assert set(Image.objects.values_list("id", flat=True)) == {i.id for i in images[7:]} | {other.id}
    df_after = docker.get("/docker/v1.47/system/df").json()["LayersSize"]
    assert df_before - df_after == preview["bytes_freed"]
    run_event = AuditEvent.objects.get(action="policy_run")
    assert run_event.policy == "keep5" and run_event.username == "olive"
    assert run_event.attributes["bytes_freed"] == str(preview["bytes_freed"])
    assert AuditEvent.objects.filter(action="untag", policy="keep5").count() == 7


def test_keep_tags_labels_unused_and_untagged_rules() -> None:
    release = _image("r", "team/api:v1.0")
    labelled = _image("l", "team/api:pinned", "keep=yes")
    idle = _image("i", "team/api:idle")
    fresh = _image("f", "team/api:fresh")
    Image.objects.filter(pk__in=[release.pk, labelled.pk, idle.pk]).update(added_at=timezone.now() - timedelta(days=40))
    Image.objects.filter(pk=fresh.pk).update(last_pulled_at=timezone.now())
    dangling = _image("d", None)
    RepoDigest.objects.create(repository=get_or_create_repository(parse_normalized("team/api")),
                              digest="sha256:" + "a" * 64, image=dangling)
    Image.objects.filter(pk=dangling.pk).update(created=timezone.now() - timedelta(days=10))
    policy = RetentionPolicy.objects.create(name="p", repository="team/*", keep_tags="v*", keep_label="keep=yes",
                                            unused_for="30d", untagged_older_than="7d")
    preview = retention.preview(policy)
    assert preview["untag"] == ["team/api:idle", "team/api@sha256:" + "a" * 64]
    assert sorted(preview["delete"]) == sorted([idle.id, dangling.id])
    result = retention.run(policy)
    assert result["delete"] == preview["delete"]
    assert set(Tag.objects.values_list("name", flat=True)) == {"v1.0", "pinned", "fresh"}


@pytest.mark.parametrize("field, value", [("repository", ""), ("repository", "[z-a]"), ("unused_for", "7 days"),
                                          ("untagged_older_than", "5y"), ("keep_label", "=x"), ("schedule", "often")])
def test_bad_fields_are_a_400_naming_them(client_for, operator, field, value) -> None:  # type: ignore[no-untyped-def]
    body = {"name": "x", "repository": "team/*", field: value}
    response = client_for(operator).post("/api/v1/retention-policies/", body, format="json")
    assert response.status_code == 400 and field in str(response.json()), response.json()


def test_due_policies_start_on_schedule(operator, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    RetentionPolicy.objects.create(name="hourly", repository="team/*", keep_last=1, schedule="1h")
    RetentionPolicy.objects.create(name="by-hand", repository="team/*", keep_last=1)
    with django_capture_on_commit_callbacks():
        started = retention.start_due_runs()
        assert [j.params["name"] for j in started] == ["hourly"] and started[0].origin["interface"] == "policy"
        assert retention.start_due_runs() == []  # not again before its hour


def test_the_retention_page_adds_previews_and_runs(operator, member, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        _image(f"p{n}", f"team/web:{n}")
    page = Client()
    page.force_login(operator)
    assert page.post("/retention/", {"action": "add", "name": "one", "repository": "team/*", "keep_last": "1"}
                     ).status_code == 302
    bad = page.post("/retention/", {"action": "add", "name": "two", "repository": "team/*", "unused_for": "soon"})
    assert bad.status_code == 200 and "unused_for must be a duration" in bad.content.decode()
    policy = RetentionPolicy.objects.get()
    shown = page.post("/retention/", {"action": "preview", "policy": policy.pk}).content.decode()
    assert "team/web:1" in shown and "team/web:0" in shown and "team/web:2</li>" not in shown
    with django_capture_on_commit_callbacks():
        ran = page.post("/retention/", {"action": "run", "policy": policy.pk})
    assert ran.status_code == 302 and ran["Location"].startswith("/jobs/")
    outsider = Client()
    outsider.force_login(member)
    assert outsider.get("/retention/").status_code == 403
