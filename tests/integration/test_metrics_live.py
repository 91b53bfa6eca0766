"""``/metrics`` of a live dashboard (gunicorn and a Celery worker, each writing its own samples):
after a pull from a loopback registry, the pull's bytes, its job and the requests show, summed
over the processes, in a scrape prometheus_client's own parser reads."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from imagestore.models import Image
from imagestore.services.tokens import create_token
from tests.integration.test_docker_cli import dashboard, mirror  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"{url}/metrics", timeout=30).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_counters_move_after_a_pull(dashboard: str, operator) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    before = _scrape(dashboard)
    api = requests.Session()
    api.headers["Authorization"] = f"Token {create_token(operator)[1]}"
    job = api.post(f"{dashboard}/api/v1/images/pull/", json={"reference": "centos:6.6"}, timeout=30).json()
    deadline = time.monotonic() + 60
    while (state := api.get(f"{dashboard}/api/v1/jobs/{job['id']}/", timeout=30).json()["state"]) in ("queued",
                                                                                                      "running"):
        assert time.monotonic() < deadline, "the pull did not end"
        time.sleep(0.1)
    assert state == "succeeded"
    after = _scrape(dashboard)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    image = Image.objects.get()
    assert moved("imagestore_jobs_total", kind="pull", state="succeeded") == 1
    layer_bytes = sum(link.layer.size for link in image.image_layers.select_related("layer"))
    assert moved("imagestore_transferred_bytes_total", operation="pull") >= layer_bytes > 0
    assert moved("imagestore_http_requests_total", view="job-detail", method="GET", status="200") >= 1
    assert moved("imagestore_http_request_duration_seconds_count", view="image-pull") == 1
    assert after[("imagestore_store_blobs", ())] >= 2
