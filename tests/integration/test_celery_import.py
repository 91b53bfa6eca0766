"""An import run by a real Celery worker on real Redis, end to end; and a worker killed mid-job."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from imagestore.models import Image, Job, Layer
from tests.builders import COMPRESSORS, simple_rootfs_tar, tar_bytes

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_runs_an_upload_import_and_the_api_shows_the_image(start_worker, operator, store_root: Path) -> None:  # type: ignore[no-untyped-def]
    start_worker()
    client = APIClient()
    client.force_login(operator)
    data = COMPRESSORS["xz"](simple_rootfs_tar() + b"\0" * 20000)
    upload = io.BytesIO(data)
    upload.name = "rootfs.tar.xz"
    response = client.post("/api/v1/images/import/", {"file": upload, "repository": "ubuntu", "tag": "14.10"},
                           format="multipart")
    assert response.status_code == 202
    job_id = response.json()["id"]
    _wait_for(lambda: Job.objects.get(pk=job_id).finished, what="the import job to finish")
    job = client.get(f"/api/v1/jobs/{job_id}/").json()
    assert job["state"] == "succeeded", job["error"]
    assert job["progress"]["import"]["current"] == len(data)
    assert job["worker"] == "testworker@localhost"
    rows = client.get("/api/v1/images/").json()["results"]
    assert [(r["repository"], r["tag"], r["id"]) for r in rows] == [("ubuntu", "14.10", job["result"]["image"])]
    inspect = client.get("/api/v1/images/ubuntu:14.10/inspect/").json()
    assert inspect["RepoTags"] == ["ubuntu:14.10"] and inspect["Id"] == job["result"]["image"]
    assert not list((store_root / "uploads").iterdir())


def test_progress_moves_while_a_url_import_runs(start_worker, paced_source, operator) -> None:  # type: ignore[no-untyped-def]
    body = COMPRESSORS["gzip"](tar_bytes([("noise", os.urandom(1 << 20))]))  # ~1 MB, ~32 chunks
    url = paced_source(body, 0.05)  # allowed before the worker starts: it inherits the allow-list
    start_worker()
    client = APIClient()
    client.force_login(operator)
    job_id = client.post("/api/v1/images/import/", {"url": url, "repository": "slow:1"}).json()["id"]
    seen: set[int] = set()

    def progressed() -> bool:
        job = Job.objects.get(pk=job_id)
        item = job.progress.get("import")
        if item:
            seen.add(item["current"])
        return job.finished

    _wait_for(progressed, what="the URL import")
    job = Job.objects.get(pk=job_id)
    assert job.state == Job.State.SUCCEEDED, job.error
    assert len(seen) >= 3, f"progress was seen only at {sorted(seen)} of {len(body)} bytes; log {job.log}"
    assert job.progress["import"] == {"current": len(body), "total": len(body), "phase": "Import complete"}


def test_killed_worker_leaves_no_half_image_and_the_job_ends_failed(start_worker, paced_source, operator,
                                                                    store_root: Path) -> None:  # type: ignore[no-untyped-def]
    body = COMPRESSORS["gzip"](tar_bytes([("noise", os.urandom(4 << 20))]))  # ~4 MB over ~6 s
    url = paced_source(body, 0.05)
    worker = start_worker("doomed@localhost")
    client = APIClient()
    client.force_login(operator)
    job_id = client.post("/api/v1/images/import/", {"url": url, "repository": "doomed:1"}).json()["id"]
    _wait_for(lambda: (Job.objects.get(pk=job_id).progress.get("import") or {}).get("current", 0) > 0,
              what="the import to start")
    worker.kill()
    job = Job.objects.get(pk=job_id)
    assert job.state == Job.State.RUNNING  # nobody has noticed yet

    start_worker("doomed@localhost")  # the same worker comes back
    _wait_for(lambda: Job.objects.get(pk=job_id).finished, what="the orphaned job to be failed")
    job = Job.objects.get(pk=job_id)
    assert job.state == Job.State.FAILED
    assert "doomed@localhost stopped while running this job" in job.error
    assert not Image.objects.exists() and not Layer.objects.exists()
    # No blob under a final name: the killed writer only ever had a temporary file.
    final_blobs = [p for p in store_root.glob("sha256/*/*") if p.is_file()]
    assert final_blobs == []
