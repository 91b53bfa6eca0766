"""Housekeeping over REST: operators only; GC and fsck run as jobs and record their runs."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from imagestore.blobs import get_store
from imagestore.models import HousekeepingRun, Job
from imagestore.services.jobs import run_job

pytestmark = pytest.mark.django_db

ENDPOINTS = [("post", "/api/v1/system/gc/"), ("post", "/api/v1/system/fsck/"), ("get", "/api/v1/system/runs/")]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_housekeeping_needs_an_operator(method: str, url: str, member, client_for) -> None:  # type: ignore[no-untyped-def]
    assert getattr(APIClient(), method)(url).status_code == 401
    assert getattr(client_for(member), method)(url, {}, format="json").status_code == 403


def test_gc_job_frees_and_its_run_is_listed(make_image, operator, client_for) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    orphan = get_store().put_bytes(b"orphan")
    client = client_for(operator)
    response = client.post("/api/v1/system/gc/", {"grace_seconds": 0, "dry_run": True}, format="json")
    assert response.status_code == 202 and response.json()["kind"] == "gc"
    job = run_job(response.json()["id"])
    assert job is not None and job.state == Job.State.SUCCEEDED, job.error
    assert job.result["dry_run"] is True and job.result["freed"]["blobs"]["count"] == 1
    assert get_store().exists(orphan)
    job = run_job(client.post("/api/v1/system/gc/", {"grace_seconds": 0}, format="json").json()["id"])
    assert job is not None and job.result["freed_count"] >= 1 and not get_store().exists(orphan)
    runs = client.get("/api/v1/system/runs/?what=gc").json()
    assert runs["count"] == 2 and runs["results"][0]["job"] == str(job.id)
    assert client.get(f"/api/v1/system/runs/{runs['results'][0]['id']}/").json()["freed"]["blobs"]["count"] == 1


def test_fsck_job_reports_broken_images(make_image, operator, client_for) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    get_store().path(image.layers.get().digest).unlink()
    client = client_for(operator)
    response = client.post("/api/v1/system/fsck/", {"repair": True}, format="json")
    assert response.status_code == 202
    job = run_job(response.json()["id"])
    assert job is not None and job.state == Job.State.SUCCEEDED, job.error
    assert job.result["broken_images"] == [image.id] and job.result["broken"] == 1
    assert any("missing blob" in line for line in job.log)
    assert client.get(f"/api/v1/images/{image.id}/").json()["broken"] is True
    assert HousekeepingRun.objects.get(what="fsck").job_id == job.id


def test_bad_grace_is_a_400(operator, client_for) -> None:  # type: ignore[no-untyped-def]
    response = client_for(operator).post("/api/v1/system/gc/", {"grace_seconds": -1}, format="json")
    assert response.status_code == 400
