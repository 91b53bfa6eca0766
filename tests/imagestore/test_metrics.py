"""``/metrics``: Prometheus's text format (parsed by prometheus_client's own parser), guarded by
METRICS_TOKEN or loopback; requests, jobs, GC and the store are measured."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from imagestore.services import gc, jobs
from imagestore.services.import_ import start_import
from imagestore.services.uploads import keep_stream
from tests.builders import simple_rootfs_tar

pytestmark = pytest.mark.django_db


def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.content.decode()) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_guard(settings) -> None:  # type: ignore[no-untyped-def]
    assert Client(REMOTE_ADDR="10.0.0.8").get("/metrics").status_code == 403
    settings.METRICS_TOKEN = "s3cret"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert scrape(Client(REMOTE_ADDR="10.0.0.8"), HTTP_AUTHORIZATION="Bearer s3cret")


def test_counters_move_with_requests_jobs_and_gc(operator, store_root, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    before = scrape(client)
    client.get("/api/v1/images/")  # 401 without a user: still counted
    tar = simple_rootfs_tar("metrics")
    with django_capture_on_commit_callbacks():
        job = start_import(upload_path=str(keep_stream(io.BytesIO(tar))), repository="m:1", owner=operator)
    jobs.run_job(str(job.id))
    gc.collect_garbage(0)
    after = scrape(client)
    assert value(after, "imagestore_http_requests_total", view="image-list", method="GET", status="401") == \
        value(before, "imagestore_http_requests_total", view="image-list", method="GET", status="401") + 1
    assert value(after, "imagestore_jobs_total", kind="import", state="succeeded") == \
        value(before, "imagestore_jobs_total", kind="import", state="succeeded") + 1
    assert value(after, "imagestore_transferred_bytes_total", operation="import") - \
        value(before, "imagestore_transferred_bytes_total", operation="import") == len(tar)
    assert value(after, "imagestore_job_duration_seconds_count", kind="import") >= 1
    assert value(after, "imagestore_gc_runs_total") == value(before, "imagestore_gc_runs_total") + 1
    assert value(after, "imagestore_store_blobs") == 2 and value(after, "imagestore_store_bytes") > 0
    assert value(after, "imagestore_images") == 1
    assert ("imagestore_update_checks_total", (("outcome", "ok"),)) not in after  # defined, not yet counted
