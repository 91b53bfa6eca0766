"""Prometheus metrics, with the official client in its multiprocess mode: every gunicorn and
Celery process writes its samples to files under ``METRICS_DIR`` (settings), and ``/metrics``
adds them up, with the store's own figures read from the database at scrape time.

What is measured: HTTP requests by view, method and status with their latency; jobs by kind
and state with their duration; bytes pulled, pushed, imported, loaded and saved; the store's
size and blob count; garbage collection runs and bytes freed; update checks (the counter for
the update check to increment). ``/metrics`` answers only with ``METRICS_TOKEN`` as a bearer
token, or, when that is unset, only to loopback clients.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

HTTP_REQUESTS = Counter("imagestore_http_requests_total", "HTTP requests answered, by view, method and status",
                        ["view", "method", "status"])
HTTP_LATENCY = Histogram("imagestore_http_request_duration_seconds",
                         "Time to answer a request (to the first byte of a streamed answer), by view", ["view"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
JOBS = Counter("imagestore_jobs_total", "Jobs that ended, by kind and state", ["kind", "state"])
JOB_DURATION = Histogram("imagestore_job_duration_seconds", "Time a job ran, by kind", ["kind"],
                         buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600))
BYTES = Counter("imagestore_transferred_bytes_total",
                "Bytes moved, by operation: pull (downloaded), push (uploaded), import, load (read), save (written)",
                ["operation"])
GC_RUNS = Counter("imagestore_gc_runs_total", "Garbage collection runs (dry runs not counted)")
GC_FREED = Counter("imagestore_gc_freed_bytes_total", "Bytes garbage collection freed")
UPDATE_CHECKS = Counter("imagestore_update_checks_total", "Checks for newer versions of stored images, by outcome",
                        ["outcome"])

TRANSFER_KINDS = {"pull", "push", "import", "load", "save"}


def job_ended(kind: str, state: str, seconds: float | None, moved: int) -> None:
    """A job's end: its kind and state, how long it ran, the bytes it moved."""
    JOBS.labels(kind=kind, state=state).inc()
    if seconds is not None and seconds >= 0:
        JOB_DURATION.labels(kind=kind).observe(seconds)
    if moved > 0 and kind in TRANSFER_KINDS:
        BYTES.labels(operation=kind).inc(moved)


def counted(operation: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` as they go, counted as ``operation`` bytes (a streamed save's archive)."""
    for chunk in chunks:
        BYTES.labels(operation=operation).inc(len(chunk))
        yield chunk


class StoreCollector(Collector):
    """The store's size and blob count and the jobs by state, read from the database when scraped."""

    def collect(self) -> Iterator[Any]:
        from django.db.models import Count

        from .models import Image, Job, Layer
        from .services.disk import layers_size

        size = GaugeMetricFamily("imagestore_store_bytes", "Bytes the store holds: each layer blob once, and configs")
        size.add_metric([], layers_size())
        yield size
        blobs = GaugeMetricFamily("imagestore_store_blobs", "Blobs the images reference (layers and configs)")
        blobs.add_metric([], Layer.objects.values("digest").distinct().count() + Image.objects.count())
        yield blobs
        images = GaugeMetricFamily("imagestore_images", "Images in the store")
        images.add_metric([], Image.objects.count())
        yield images
        jobs = GaugeMetricFamily("imagestore_jobs", "Jobs now, by kind and state (queued or running)",
                                 labels=["kind", "state"])
        for row in (Job.objects.filter(state__in=[Job.State.QUEUED, Job.State.RUNNING]).order_by()
                    .values("kind", "state").annotate(n=Count("id"))):
            jobs.add_metric([row["kind"], row["state"]], row["n"])
        yield jobs


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        response = HttpResponse("metrics need the METRICS_TOKEN bearer token, or a loopback client\n",
                                status=401 if settings.METRICS_TOKEN else 403, content_type="text/plain")
        if settings.METRICS_TOKEN:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(settings.METRICS_DIR))
    registry.register(StoreCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts and times every request by its view's name (never its path: ids would make a
    label per image)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match._func_path) if match is not None else "unmatched"
        HTTP_REQUESTS.labels(view=view, method=request.method or "", status=str(response.status_code)).inc()
        HTTP_LATENCY.labels(view=view).observe(time.perf_counter() - started)
        return response


def reset(directory: Any = None) -> int:
    """Empty the samples folder (at start: an earlier run's processes are gone). Returns how many files went."""
    from pathlib import Path

    folder = Path(directory or settings.METRICS_DIR)
    removed = 0
    for path in folder.glob("*.db"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
