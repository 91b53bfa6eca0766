"""A day in the life of an installation, as an operator runs it for weeks (issue 11).

Real peers throughout: a loopback docker-registry seeded by skopeo with umoci-built
busybox images, a Celery worker process, a redis-server of this test's own (so it can be
restarted without touching the shared one), runc for the containers, and the test
database (PostgreSQL in CI, SQLite otherwise). Every operation goes through the REST API
as an operator: a few dozen rounds of pull, import, tag, container create/run/commit,
save, load, remove and prune, with GC (grace 0) run beside the worker's jobs; the worker is killed (SIGKILL) once in the middle of a slow
pull and started again; Redis is restarted once while jobs wait in its queue (jobs
submitted while it is down answer 503). Afterwards: no job is queued or running, fsck
finds nothing broken, and after GC (grace 0) the blob tree holds exactly the blobs the
database references, uploads/ and exports/ are empty, and every container folder has
its row.
"""

from __future__ import annotations

import http.client
import http.server
import io
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

from imagestore.dbutil import database_url
from imagestore.models import Container, Image, Job, Layer, Manifest
from imagestore.services import jobs
from imagestore.services.gc import collect_garbage
from tests.builders import COMPRESSORS, simple_rootfs_tar
from tests.integration.conftest import Worker
from tests.integration.registry import (
    RegistryProxy,
    build_busybox_layout,
    free_port,
    require_tool,
    skopeo_copy,
    start_registry,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROUNDS = 36
KILL_ROUND = ROUNDS // 3
REDIS_ROUND = 2 * ROUNDS // 3
STALE_AFTER = 30  # the worker beats every 6 s; the test's sweeps use the same limit
QUEUED_TIMEOUT = 2  # how long a queued job waits before the test's sweep sends it again
WORKER = "day@localhost"


class OwnRedis:
    """A redis-server of the test's own on a fixed free port, without persistence, so a
    restart loses every message it held (as a Redis without AOF does)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [require_tool("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("the test's own redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class SlowProxy(RegistryProxy):
    """Forwards to the registry; layer blobs (over 10 kB) go out 16 KiB at a time with
    ``pause`` seconds between pieces, so a pull through it can be caught in the middle."""

    def __init__(self, upstream: str, pause: float) -> None:
        self.pause = pause
        super().__init__(upstream)

    def forward(self, handler: http.server.BaseHTTPRequestHandler, method: str) -> None:
        connection = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "connection")}
        connection.request(method, handler.path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        handler.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if method == "HEAD":
            return
        slow = "/blobs/sha256:" in handler.path and len(body) > 10000
        try:
            for i in range(0, len(body), 16384 if slow else len(body) or 1):
                handler.wfile.write(body[i:i + 16384] if slow else body)
                handler.wfile.flush()
                if slow:
                    time.sleep(self.pause)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True


def _point_celery_at(url: str) -> None:
    """This process publishes (submits, the sweeper's re-sends) to ``url`` from now on: the
    Celery app read its broker from settings once, and keeps pools of connections to it."""
    import kombu.pools

    from dashboard.celery import app

    app.conf.broker_url = url
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    # kombu's global producer and connection pools are keyed by the broker URL: drop them all,
    # or pointing back later would reuse a pool closed here ("Acquire on closed pool").
    kombu.pools.reset()
    app.amqp._producer_pool = None


@pytest.fixture
def own_broker(tmp_path: Path, settings) -> Iterator[OwnRedis]:  # type: ignore[no-untyped-def]
    from dashboard.celery import app

    server = OwnRedis(tmp_path)
    before = app.conf.broker_url
    settings.CELERY_BROKER_URL = server.url
    settings.JOB_STALE_AFTER = STALE_AFTER
    _point_celery_at(server.url)
    yield server
    _point_celery_at(before)
    server.stop()


@pytest.fixture
def registry_images(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A registry holding day/a:1 and day/b:1 (for the rounds) and day/big:1 (pulled only
    through the slow proxy), each a distinct ~1 MB busybox layer."""
    registry = start_registry(tmp_path / "registry")
    try:
        for name in ("a", "b", "big"):
            layout = build_busybox_layout(tmp_path / f"umoci-{name}", tag=name, marker=f"image {name}")
            skopeo_copy(f"oci:{layout}:{name}", f"docker://{registry.host}/day/{name}:1")
        proxy = SlowProxy(registry.host, pause=0.1)
        yield {"registry": registry, "proxy": proxy}
        proxy.stop()
    finally:
        registry.stop()


class Day:
    """The operator's side: REST calls and waiting for jobs, sweeping as beat would."""

    def __init__(self, client: APIClient) -> None:
        self.client = client
        self.expected_failures: dict[str, str] = {}

    def ok(self, response: Any, status: int = 200) -> Any:
        assert response.status_code == status, (response.status_code, getattr(response, "content", b"")[:2000])
        return response.json() if response.get("Content-Type", "").startswith("application/json") else response

    def wait(self, job_id: str, timeout: float = 60, state: str = Job.State.SUCCEEDED) -> Job:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = Job.objects.get(pk=job_id)
            if job.finished:
                assert job.state == state, (job.kind, job.state, job.error, job.log[-5:])
                return job
            jobs.sweep_stale_jobs(stale_after=STALE_AFTER)  # must never fail a healthy job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} not finished in {timeout} s: {Job.objects.get(pk=job_id).state}")

    def submit(self, path: str, data: dict[str, Any], **kwargs: Any) -> str:
        return str(self.ok(self.client.post(path, data, **kwargs), 202)["id"])

    def run(self, path: str, data: dict[str, Any], **kwargs: Any) -> Job:
        return self.wait(self.submit(path, data, **kwargs))

    def pull(self, reference: str) -> Job:
        return self.run("/api/v1/images/pull/", {"reference": reference}, format="json")

    def submit_import(self, repository: str, tag: str, marker: str) -> Any:
        upload = io.BytesIO(COMPRESSORS["gzip"](simple_rootfs_tar(marker)))
        upload.name = "rootfs.tar.gz"
        return self.client.post("/api/v1/images/import/", {"file": upload, "repository": repository, "tag": tag},
                                format="multipart")

    def submit_job(self, response: Any) -> str:
        return str(self.ok(response, 202)["id"])


def _downloading(job_id: str) -> bool:
    items = Job.objects.get(pk=job_id).progress.values()
    return any(item["phase"] == "Downloading" and item["current"] > 0 for item in items)


def _wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _round(day: Day, i: int, registry_host: str, kept_containers: list[str], archives: list[bytes]) -> None:
    """One round. The import, the load of the previous round's archive and the commit run
    in the worker while this side tags, runs a container, removes and prunes."""
    client = day.client
    pulled = f"{registry_host}/day/{'ab'[i % 2]}:1"
    pull = day.submit("/api/v1/images/pull/", {"reference": pulled}, format="json")
    pending = [day.submit_job(day.submit_import("day/import", str(i), f"round {i}"))]
    loaded = bool(archives)
    if loaded:
        upload = io.BytesIO(archives.pop())
        upload.name = "images.tar"
        pending.append(day.submit("/api/v1/images/load/", {"file": upload}, format="multipart"))
    day.wait(pull)
    day.ok(client.post(f"/api/v1/images/{pulled}/tag/", {"repository": "day/tagged", "tag": str(i)},
                       format="json"), 201)

    container = day.ok(client.post("/api/v1/containers/", {"image": pulled, "cmd": ["sh", "-c", f"echo {i} > /round"]},
                                   format="json"), 201)["id"]
    day.ok(client.post(f"/api/v1/containers/{container}/start/"))
    assert day.ok(client.post(f"/api/v1/containers/{container}/wait/"))["StatusCode"] == 0
    pending.append(day.submit(f"/api/v1/containers/{container}/commit/", {"repository": "day/commit", "tag": str(i)},
                              format="json"))
    pruned = i % 6 == 3
    # The operator's `manage.py collect_garbage --grace 0` while the worker imports, loads and
    # commits: it must take nothing that live work holds (before, a commit lost its layer tar).
    sweep = collect_garbage(0, trigger="operator")
    assert sweep.errors == [], sweep.errors
    if i % 3 == 2:  # rmi of older rounds' images, some still used by a kept container
        for name in (f"day/import:{i - 2}", f"day/commit:{max(i - 3, 0)}", f"day/tagged:{i - 2}"):
            assert client.delete(f"/api/v1/images/{name}/?force=1").status_code in (200, 404, 409)
    if pruned:  # docker image prune -a while the worker imports, loads and commits
        day.ok(client.post("/api/v1/images/prune/", {"all": True}, format="json"))
        if kept_containers:  # and a kept container goes, so its image and snapshot can
            assert client.delete(f"/api/v1/containers/{kept_containers.pop(0)}/").status_code == 204
    for job_id in pending:
        day.wait(job_id)
    if loaded and not pruned:  # the previous round's images are back from its archive
        for name in (f"day/import:{i - 1}", f"day/commit:{i - 1}"):
            day.ok(client.get(f"/api/v1/images/{name}/"))
    if i % 4 == 0:
        kept_containers.append(container)
    else:
        assert client.delete(f"/api/v1/containers/{container}/").status_code == 204

    names = [f"day/import:{i}", f"day/commit:{i}"]
    if pruned and not all(client.get(f"/api/v1/images/{name}/").status_code == 200 for name in names):
        return  # the prune took this round's new images: nothing to save
    saved = day.run("/api/v1/images/save/", {"images": names}, format="json")
    archives.append(b"".join(client.get(f"/api/v1/jobs/{saved.id}/download/").streaming_content))  # type: ignore[attr-defined]
    day.ok(client.post("/api/v1/images/remove/", {"images": names, "force": True}, format="json"))
    for name in names:
        assert client.get(f"/api/v1/images/{name}/").status_code == 404


def _blob_digests(root: Path) -> set[str]:
    return {f"sha256:{p.name}" for p in (root / "sha256").glob("*/*") if p.is_file()}


def test_a_day_in_the_life(own_broker: OwnRedis, registry_images: dict[str, Any], operator, store_root: Path,
                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("runc")
    started = time.monotonic()
    registry, proxy = registry_images["registry"], registry_images["proxy"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings", "DATABASE_URL": database_url(),
           "IMAGESTORE_ROOT": str(store_root), "CELERY_BROKER_URL": own_broker.url, "REDIS_URL": own_broker.url,
           "JOB_PROGRESS_INTERVAL_MS": "100", "JOB_STALE_AFTER": str(STALE_AFTER), "EXPORT_RETENTION": "0"}
    workers: list[Worker] = []

    def start_worker() -> Worker:
        workers.append(Worker(WORKER, env, tmp_path / f"worker-{len(workers)}.log"))
        workers[-1].wait_ready()
        return workers[-1]

    client = APIClient()
    client.force_login(operator)
    day = Day(client)
    kept: list[str] = []
    archives: list[bytes] = []
    marks: dict[str, float] = {}
    worker = start_worker()
    try:
        for i in range(ROUNDS):
            if i == KILL_ROUND:
                # A slow pull, its worker killed in the middle of the layer download.
                doomed = day.submit("/api/v1/images/pull/", {"reference": f"{proxy.host}/day/big:1"}, format="json")
                _wait_until(lambda: _downloading(doomed), 30, "the slow pull to download")  # noqa: B023
                worker.kill()
                assert Job.objects.get(pk=doomed).state == Job.State.RUNNING  # nobody has noticed yet
                worker = start_worker()  # the same worker comes back and fails what it was running
                failed = day.wait(doomed, 30, state=Job.State.FAILED)
                assert f"the worker {WORKER} stopped while running this job" in failed.error
                day.expected_failures[doomed] = failed.error
                marks["kill"] = time.monotonic() - started

            if i == REDIS_ROUND:
                # Jobs wait in Redis behind a slow pull; Redis restarts and forgets them.
                proxy.pause = 0.15  # ~10 s: time enough to restart Redis while it runs
                slow = day.submit("/api/v1/images/pull/", {"reference": f"{proxy.host}/day/big:1"}, format="json")
                _wait_until(lambda: _downloading(slow), 30, "the slow pull to download")  # noqa: B023
                waiting = [str(day.ok(day.submit_import("day/waiting", str(n), f"waiting {n}"), 202)["id"])
                           for n in range(3)]
                own_broker.stop()
                refused = day.submit_import("day/refused", "1", "refused")
                assert refused.status_code == 503, refused.content
                assert "could not be queued" in refused.json()["detail"]
                refused_job = Job.objects.get(error__contains="could not be queued")
                assert refused_job.state == Job.State.FAILED
                day.expected_failures[str(refused_job.id)] = refused_job.error
                own_broker.start()
                assert Job.objects.get(pk=slow).state == Job.State.RUNNING  # the restart did not stop it
                day.wait(slow, 60)
                # The lost messages are sent again by the queued-job sweeper, as beat would call it
                # (then it waits JOB_QUEUED_TIMEOUT again before failing any: so does this test).
                deadline = time.monotonic() + 60
                while Job.objects.filter(pk__in=waiting, state=Job.State.QUEUED, heartbeat_at__isnull=True).exists():
                    assert time.monotonic() < deadline, list(Job.objects.filter(pk__in=waiting).values("state", "log"))
                    jobs.sweep_queued_jobs(timeout=QUEUED_TIMEOUT)
                    time.sleep(0.25)
                for job_id in waiting:
                    assert any("sent to the queue again" in line for line in day.wait(job_id, 60).log)
                marks["redis"] = time.monotonic() - started

            _round(day, i, registry.host, kept, archives)
        marks["rounds"] = time.monotonic() - started

        # --- afterwards --------------------------------------------------------------------------
        assert not Job.objects.filter(state__in=[Job.State.QUEUED, Job.State.RUNNING]).exists()
        assert day.ok(client.get("/api/v1/jobs/?state=queued"))["count"] == 0
        assert day.ok(client.get("/api/v1/jobs/?state=running"))["count"] == 0
        failures = dict(Job.objects.filter(state=Job.State.FAILED).values_list("id", "error"))
        assert {str(k): v for k, v in failures.items()} == day.expected_failures
        assert not Job.objects.exclude(state__in=[Job.State.SUCCEEDED, Job.State.FAILED]).exists()
        # Every job that ended took its upload with it.
        assert sorted(p.name for p in (store_root / "uploads").iterdir()) == []
        containers = set(Container.objects.values_list("id", flat=True))
        assert containers and {p.name for p in (store_root / "containers").iterdir()} == containers

        fsck = day.run("/api/v1/system/fsck/", {}, format="json")
        assert fsck.result["broken"] == 0 and fsck.result["broken_images"] == [], fsck.log
        gc = day.run("/api/v1/system/gc/", {"grace_seconds": 0}, format="json")
        assert gc.result["errors"] == [], gc.result
        freed = {folder: totals["count"] for folder, totals in gc.result["freed"].items()}

        # Layers, configs, and the manifests kept from pulls so /v2/ serves them byte for byte.
        referenced = (set(Layer.objects.values_list("digest", flat=True)) | set(Image.objects.values_list("id", flat=True))
                      | set(Manifest.objects.values_list("digest", flat=True)))
        on_disk = _blob_digests(store_root)
        assert on_disk == referenced, {"unreferenced": sorted(on_disk - referenced),
                                       "missing": sorted(referenced - on_disk)}
        assert list((store_root / "uploads").iterdir()) == []
        assert list((store_root / "exports").iterdir()) == []  # EXPORT_RETENTION=0
        assert {p.name for p in (store_root / "containers").iterdir()} == containers
        assert sorted(p.name for p in (store_root / "locks").iterdir()) in ([], ["blob-names.lock"])
        assert [p.name for p in (store_root / "tmp").iterdir() if not p.name.startswith("pin-")] == []
        after = day.run("/api/v1/system/fsck/", {}, format="json")
        assert after.result["findings"] == 0, after.log
        marks["checks"] = time.monotonic() - started
    finally:
        for w in workers:
            w.stop()
    for w in workers:  # the kill and the restart were handled, not survived by luck
        log = w.log.read_text()
        assert "Traceback" not in log and " ERROR imagestore" not in log, log[-5000:]
    with capsys.disabled():
        print(f"\nday in the life ({settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}): "
              + ", ".join(f"{k} {v:.1f} s" for k, v in marks.items())
              + f"; {Job.objects.count()} jobs, {Image.objects.count()} images, {len(on_disk)} blobs, "
              + f"{len(containers)} containers; GC freed {freed}")
