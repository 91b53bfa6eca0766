"""The pages' server time on a big store: 10,000 images (three layers each, a shared base per
hundred, 100 repositories, half of the images tagged), 1,000 jobs with progress and logs, 200
containers. Each page (images, overview, jobs, an image's page, a job's page, containers) is
rendered by Django's test client (no network: the server's time alone), median of several runs,
against the 150 ms target, with its query count. A throw-away SQLite store unless DATABASE_URL
says otherwise (``BENCH_IMAGES``, ``BENCH_JOBS`` change the sizes)."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COUNT = int(os.environ.get("BENCH_IMAGES", "10000"))
JOBS = int(os.environ.get("BENCH_JOBS", "1000"))
RUNS = int(os.environ.get("BENCH_RUNS", "9"))
TARGET_MS = 150.0


def populate() -> dict[str, str]:
    from django.contrib.auth.models import User
    from django.utils import timezone

    from imagestore.models import Container, Image, ImageLayer, Job, Layer, Repository, Tag
    from imagestore.services.import_ import import_image
    from tests.builders import simple_rootfs_tar

    now = timezone.now()
    repositories = Repository.objects.bulk_create(
        [Repository(registry="docker.io", path=f"library/bench{r}", name=f"bench{r}") for r in range(100)])
    bases = Layer.objects.bulk_create([
        Layer(diff_id=f"sha256:{b:064x}", digest=f"sha256:{b + 10**6:064x}", media_type="application/vnd.oci.image."
              "layer.v1.tar+gzip", size=30_000_000 + b, uncompressed_size=80_000_000 + b) for b in range(COUNT // 100)])
    own = Layer.objects.bulk_create([
        Layer(diff_id=f"sha256:{10**7 + i:064x}", digest=f"sha256:{2 * 10**7 + i:064x}",
              media_type="application/vnd.oci.image.layer.v1.tar+gzip", size=1_000 + i, uncompressed_size=4_000 + i)
        for i in range(2 * COUNT)],
        batch_size=2000)
    images = Image.objects.bulk_create([
        Image(id=f"sha256:{i:064x}", config_size=1500, created=now - timedelta(seconds=i),
              size=80_000_000 + 8_000 + i, architecture="amd64", os="linux") for i in range(COUNT)], batch_size=2000)
    links = []
    for i, image in enumerate(images):
        links += [ImageLayer(image=image, layer=bases[i // 100], position=0),
                  ImageLayer(image=image, layer=own[2 * i], position=1),
                  ImageLayer(image=image, layer=own[2 * i + 1], position=2)]
    ImageLayer.objects.bulk_create(links, batch_size=5000)
    Tag.objects.bulk_create([Tag(repository=repositories[i % 100], name=f"t{i}", image=images[i])
                             for i in range(COUNT // 2)], batch_size=2000)
    user = User.objects.create_user("bench", is_staff=True)
    states = ["succeeded"] * 8 + ["failed", "running"]
    Job.objects.bulk_create([
        Job(kind="pull", state=states[j % 10], owner=user, params={"reference": f"bench{j % 100}:t{j}"},
            progress={f"sha256:{k:012x}": {"current": 1000 * k, "total": 4000, "phase": "Downloading"}
                      for k in range(3)},
            log=[f"line {n}" for n in range(20)], error="the registry went away" if j % 10 == 8 else "",
            heartbeat_at=now, started_at=now) for j in range(JOBS)], batch_size=500)
    Container.objects.bulk_create([
        Container(id=secrets.token_hex(32), name=f"bench_{c}", image=images[c], state="exited", exit_code=0,
                  config={"Image": f"bench{c % 100}:t{c}", "Cmd": ["sh"]}) for c in range(200)])
    job = Job.objects.order_by("-created_at").first()
    assert job is not None
    # An image's page reads its config from the blob store: one real image among the others.
    real = import_image(io.BytesIO(simple_rootfs_tar("bench")), repository="bench-real:1")
    return {"image": real.short_id, "job": str(job.id)}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-page-"))
    os.environ.setdefault("VAR_DIR", str(work / "var"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{work / 'bench.sqlite3'}")
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    # No setup_test_environment(): its instrumented template rendering (copies of every context
    # for the test client) is no part of a server's time.
    if connection.vendor == "sqlite":
        call_command("migrate", verbosity=0)
        try:
            run(connection)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    # PostgreSQL: a database of its own (bench_<name>), dropped afterwards.
    original = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_{original}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        run(connection)
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)
        shutil.rmtree(work, ignore_errors=True)


def run(connection: Any) -> None:
    from django.contrib.auth.models import User
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    start = time.perf_counter()
    ids = populate()
    print(f"store: {COUNT} images, {JOBS} jobs, 200 containers ({connection.vendor}), "
          f"made in {time.perf_counter() - start:.1f} s")
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    pages = {"images": "/images/", "overview": "/", "jobs": "/jobs/", "an image": f"/images/{ids['image']}/",
             "a job": f"/jobs/{ids['job']}/", "containers": "/containers/"}
    worst = 0.0
    for name, path in pages.items():
        assert client.get(path).status_code == 200, path  # warm: templates, caches
        times = []
        for _ in range(RUNS):
            begin = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - begin)
            assert response.status_code == 200, path
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        if os.environ.get("BENCH_SLOWEST"):  # where a page's time goes: its slowest queries
            for query in sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:3]:
                print(f"    {float(query['time']) * 1000:7.1f} ms  {query['sql'][:400]}")
        median = statistics.median(times) * 1000
        worst = max(worst, median / TARGET_MS)
        print(f"{name:>10} {path:<24} median {median:6.1f} ms (min {min(times) * 1000:6.1f}) "
              f"{len(queries):3d} queries; target < {TARGET_MS:.0f} ms: ratio {median / TARGET_MS:.2f}x")
    print(f"worst page: {worst:.2f}x the {TARGET_MS:.0f} ms target ({'met' if worst < 1 else 'NOT met'})")
    # The first view after the store changed recomputes the cached sums (services/store_stats.py).
    from django.core.cache import cache

    for name in ("images", "overview"):
        times = []
        for _ in range(3):
            cache.clear()
            begin = time.perf_counter()
            client.get(pages[name])
            times.append(time.perf_counter() - begin)
        print(f"{name:>10} right after a change (sums recomputed): median {statistics.median(times) * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
