"""Operators run GC and fsck from the admin (as jobs) and read what each run freed and found."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from imagestore.models import Job
from imagestore.services.gc import collect_garbage
from imagestore.services.jobs import run_job

pytestmark = pytest.mark.django_db


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_buttons_queue_gc_and_fsck_jobs_and_runs_are_listed(make_image) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    client = _client(User.objects.create_superuser("root", password="pw"))
    for action in ("gc-dry-run", "gc", "fsck", "fsck-repair"):
        response = client.post("/admin/imagestore/housekeepingrun/start/", {"action": action}, follow=True)
        assert response.status_code == 200 and "Queued" in response.content.decode()
    jobs = list(Job.objects.order_by("created_at"))
    assert [(j.kind, j.params.get("dry_run", j.params.get("repair"))) for j in jobs] == [
        ("gc", True), ("gc", False), ("fsck", False), ("fsck", True)]
    for job in jobs:
        assert run_job(str(job.id)).state == Job.State.SUCCEEDED  # type: ignore[union-attr]
    page = client.get("/admin/imagestore/housekeepingrun/")
    assert page.status_code == 200 and page.content.decode().count("fsck --repair") >= 1
    run = collect_garbage(grace_seconds=0)
    assert client.get(f"/admin/imagestore/housekeepingrun/{run.pk}/change/").status_code == 200


def test_a_signed_in_user_who_is_not_staff_cannot_start_housekeeping(member) -> None:  # type: ignore[no-untyped-def]
    client = _client(member)
    assert client.get("/admin/imagestore/housekeepingrun/").status_code == 302  # to the admin login
    assert client.post("/admin/imagestore/housekeepingrun/start/", {"action": "gc"}).status_code == 302
    assert not Job.objects.exists()
