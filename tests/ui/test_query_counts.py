"""Every list page costs the same number of queries with 3 objects as with 30 (no query per
row): images, jobs, containers, the overview, registries. The objects are rows as the services
write them (images with layers, some shared, tags in several repositories; jobs with progress;
containers of those images), made in bulk so the test stays quick."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from imagestore.models import Container, Image, ImageLayer, Job, Layer, RegistryCredential, Repository, Tag
from imagestore.secrets import encrypt

pytestmark = pytest.mark.django_db

LIST_PAGES = ["/", "/images/", "/images/?order=-size", "/jobs/", "/containers/", "/registries/"]


def fill(count: int, owner) -> None:  # type: ignore[no-untyped-def]
    """``count`` images (one tagged in each of ``count // 3 + 1`` repositories, a base layer every
    image shares), ``count`` jobs and containers, ``count`` registry logins."""
    now = timezone.now()
    start = Image.objects.count()
    base, _ = Layer.objects.get_or_create(diff_id=f"sha256:{'b' * 64}", defaults={
        "digest": f"sha256:{'c' * 64}", "media_type": "application/vnd.oci.image.layer.v1.tar+gzip",
        "size": 1000, "uncompressed_size": 4000})
    repositories = [Repository.objects.get_or_create(registry="docker.io", path=f"library/q{r}")[0]
                    for r in range(count // 3 + 1)]
    for i in range(start, start + count):
        image = Image.objects.create(id=f"sha256:{i:064x}", config_size=100, created=now - timedelta(minutes=i),
                                     size=5000 + i)
        own = Layer.objects.create(diff_id=f"sha256:{i + 10**6:064x}", digest=f"sha256:{i + 2 * 10**6:064x}",
                                   media_type="application/vnd.oci.image.layer.v1.tar+gzip", size=100 + i,
                                   uncompressed_size=1000 + i)
        ImageLayer.objects.create(image=image, layer=base, position=0)
        ImageLayer.objects.create(image=image, layer=own, position=1)
        if i % 3:  # a third stay dangling
            Tag.objects.create(repository=repositories[i % len(repositories)], name=f"t{i}", image=image)
        Container.objects.create(id=secrets.token_hex(32), name=f"q_{i}", image=image, state="exited",
                                 config={"Image": f"q:{i}", "Cmd": ["sh", "-c", "true"]})
        Job.objects.create(kind=("pull", "import", "save")[i % 3], state=("succeeded", "failed", "running")[i % 3],
                           owner=owner, params={"reference": f"q{i}:t{i}"}, heartbeat_at=now,
                           progress={"sha256:ab": {"current": i, "total": 100, "phase": "Downloading"}},
                           error="refused" if i % 3 == 1 else "")
        RegistryCredential.objects.create(registry=f"registry{i}.example:5000", owner=owner, username=f"u{i}",
                                          secret_encrypted=encrypt("pw"))


def queries(client: Client, path: str) -> int:
    from django.core.cache import cache

    client.get(path)  # lazy set-up is not what this counts
    cache.clear()  # the store-wide sums (services/store_stats.py) are computed, not read back
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def test_every_list_page_costs_the_same_queries_for_3_and_30(operator) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(operator)
    counts: dict[str, list[int]] = {path: [] for path in LIST_PAGES}
    for more in (3, 27):
        fill(more, operator)
        for path in LIST_PAGES:
            counts[path].append(queries(client, path))
    assert {path: n for path, n in counts.items() if n[0] != n[1]} == {}


def test_the_check_would_see_a_query_per_row(operator) -> None:  # type: ignore[no-untyped-def]
    """The counting itself: a template that touched each row's relation would differ."""
    fill(3, operator)
    few = queries_with(lambda: [c.image.size for c in Container.objects.all()])
    fill(27, operator)
    many = queries_with(lambda: [c.image.size for c in Container.objects.all()])
    assert many > few


def queries_with(action: Callable[[], object]) -> int:
    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured)
