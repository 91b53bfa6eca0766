"""The overview (home page): what it counts and shows, for readers and operators, in a constant
number of queries; its jobs card alone for htmx; the toasts of ended jobs; the sidebar."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from imagestore.models import Container, HousekeepingRun, Image, Job, Repository, Tag
from imagestore.services.jobs import create_job
from imagestore.services.overview import disk_by_repository, overview

pytestmark = pytest.mark.django_db


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_an_empty_store_says_what_to_do_first(member, operator) -> None:  # type: ignore[no-untyped-def]
    assert Client().get("/").status_code == 302
    body = _client(operator).get("/").content.decode()
    assert "No images yet" in body and "/pull/?reference=centos" in body and "import a tarball" in body
    assert "The store has not been checked yet" in body and "No jobs yet" in body
    reader = _client(member).get("/").content.decode()
    assert "An operator can pull or import the first one." in reader and 'href="/pull/"' not in reader.split("<main")[1]


def test_counts_sizes_chart_and_largest(make_image, member) -> None:  # type: ignore[no-untyped-def]
    a = make_image("alpha:1", marker="a")
    make_image("alpha:2", marker="a")  # the same image under a second tag
    b = make_image("beta:1", marker="bb")
    make_image(None, marker="dangling")
    Container.objects.create(id=secrets.token_hex(32), name="up", image=a, state="exited", exit_code=0)
    view = overview()
    assert (view.images, view.dangling, view.tags, view.repositories) == (4, 1, 3, 2)
    assert view.exited_containers == 1 and view.total_containers == 1
    layer_a, layer_b = a.layers.get(), b.layers.get()
    assert view.disk == sum(layer.size for layer in {layer_a, layer_b, *Image.objects.get(tags__isnull=True).layers.all()}) \
        + sum(Image.objects.values_list("config_size", flat=True))
    # Each layer once per repository, however many of its tags use it.
    assert {row["name"]: row["bytes"] for row in disk_by_repository()} == {"alpha": layer_a.size, "beta": layer_b.size}
    sizes = [image.size for image in view.largest]
    assert len(sizes) == 4 and sizes == sorted(sizes, reverse=True) and sizes[0] == max(i.size for i in Image.objects.all())
    body = _client(member).get("/").content.decode()
    assert 'data-stat="images">4<' in body and 'data-stat="tags">3<' in body and "1 dangling" in body
    assert 'id="disk-chart-data"' in body and "chart.umd.min.js" in body and "alpha:1" in body


def test_shared_layers_are_told_apart_from_own(make_image) -> None:  # type: ignore[no-untyped-def]
    a = make_image("a:1", marker="same")
    # A second image over the same layer (another config: a comment), so the layer is shared.
    import io

    from imagestore.services.import_ import import_image
    from tests.builders import simple_rootfs_tar

    import_image(io.BytesIO(simple_rootfs_tar("same")), repository="b:1", message="another")
    own = make_image("c:1", marker="only mine")
    view = overview()
    assert view.shared == a.layers.get().uncompressed_size
    assert view.own == own.layers.get().uncompressed_size


def test_the_others_are_summed_in_one_bar(make_image) -> None:  # type: ignore[no-untyped-def]
    for i in range(11):
        make_image(f"r{i:02d}:1", marker=str(i) * (i + 1))
    rows = disk_by_repository(limit=8)
    assert len(rows) == 9 and rows[-1]["name"] is None and rows[-1]["count"] == 3


def test_jobs_running_failed_and_store_health(operator, member) -> None:  # type: ignore[no-untyped-def]
    running = create_job("pull", {"reference": "centos:6.6", "platform": ""}, owner=operator)
    Job.objects.filter(pk=running.pk).update(state="running", progress={
        "sha256:aa": {"current": 50, "total": 200, "phase": "Downloading"}})
    failed = create_job("push", {"reference": "x:1"})
    Job.objects.filter(pk=failed.pk).update(state="failed", error="registry said no")
    old = create_job("push", {"reference": "old:1"})
    Job.objects.filter(pk=old.pk).update(state="failed", created_at=timezone.now() - timedelta(days=30))
    HousekeepingRun.objects.create(what="fsck", broken=2, finished_at=timezone.now())
    HousekeepingRun.objects.create(what="gc", freed={"blobs": {"count": 3, "bytes": 4096}}, finished_at=timezone.now())
    body = _client(member).get("/").content.decode()
    assert f'data-running-job="{running.id}"' in body and 'aria-valuenow="50"' in body and 'aria-valuemax="200"' in body
    assert 'hx-get="/?part=jobs"' in body  # refreshed while a job runs
    assert "registry said no" in body and "old:1" not in body.split("Failed jobs")[1].split("Store health")[0]
    assert "2 problems found" in body and "4.0\xa0KB freed" in body
    part = _client(member).get("/?part=jobs", headers={"HX-Request": "true"}).content.decode()
    assert part.lstrip().startswith('<div class="card mb-3" id="overview-jobs"') and "<html" not in part
    Job.objects.filter(pk=running.pk).update(state="succeeded")
    done = _client(member).get("/?part=jobs", headers={"HX-Request": "true"}).content.decode()
    assert "hx-get" not in done  # nothing runs: the card stops asking


def test_updates_available_are_counted(make_image, member) -> None:  # type: ignore[no-untyped-def]
    image = make_image("u:1")
    Image.objects.filter(pk=image.pk).update(update_available=True)
    assert overview().updates_available == 1
    assert "1 image has an update available" in _client(member).get("/").content.decode()


def test_overview_costs_a_constant_number_of_queries(member, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    from imagestore.models import ImageLayer, Layer

    now = timezone.now()
    layers = Layer.objects.bulk_create([Layer(diff_id=f"sha256:{i:064x}", digest=f"sha256:{i:064x}", media_type="x",
                                              size=100 + i, uncompressed_size=200 + i) for i in range(300)])
    images = Image.objects.bulk_create([Image(id=f"sha256:{i:064x}", config_size=10, created=now, size=1000 + i)
                                        for i in range(300)])
    ImageLayer.objects.bulk_create([ImageLayer(image=image, layer=layers[i], position=0) for i, image in enumerate(images)]
                                   + [ImageLayer(image=image, layer=layers[0], position=1) for image in images[1:]])
    repositories = Repository.objects.bulk_create([Repository(registry="docker.io", path=f"library/r{i}", name=f"r{i}")
                                                   for i in range(30)])
    Tag.objects.bulk_create([Tag(repository=repositories[i % 30], name=f"t{i}", image=image) for i, image in enumerate(images)])
    Job.objects.bulk_create([Job(kind="pull", state=state, params={"reference": f"r{i}"})
                             for i, state in enumerate(["running", "failed", "succeeded"] * 20)])
    client = _client(member)
    client.get("/")
    with django_assert_max_num_queries(20):
        assert client.get("/").status_code == 200


def test_toasts_tell_of_the_users_own_jobs_that_ended(operator, member) -> None:  # type: ignore[no-untyped-def]
    before = timezone.now() - timedelta(seconds=1)
    mine = create_job("pull", {"reference": "centos:6.6", "platform": ""}, owner=operator)
    theirs = create_job("pull", {"reference": "other:1", "platform": ""}, owner=member)
    watched = create_job("pull", {"reference": "watched:1", "platform": ""}, owner=operator)
    Job.objects.filter(pk__in=[mine.pk, theirs.pk, watched.pk]).update(state="failed", finished_at=timezone.now(),
                                                                        error="https://u:secret@host/x failed")
    client = _client(operator)
    answer = client.get("/jobs/toasts/", {"since": before.isoformat(), "exclude": str(watched.id)},
                        headers={"HX-Request": "true"}).content.decode()
    assert f'data-job="{mine.id}"' in answer and str(theirs.id) not in answer.replace(f"exclude={watched.id}", "")
    assert f'data-job="{watched.id}"' not in answer and "secret" not in answer
    assert 'hx-swap-oob="beforeend:#toasts"' in answer and "since=" in answer
    later = client.get("/jobs/toasts/", {"since": Job.objects.get(pk=mine.pk).finished_at.isoformat()}).content.decode()  # type: ignore[union-attr]
    assert "data-toast" not in later  # told once
    assert client.get("/jobs/toasts/", {"since": "not a date"}).status_code == 200
    assert Client().get("/jobs/toasts/").status_code == 302


def test_the_sidebar_marks_the_section_of_the_page(make_image, member, staff) -> None:  # type: ignore[no-untyped-def]
    image = make_image("s:1")
    page = _client(member).get(f"/images/{image.short_id}/").content.decode()
    assert 'href="/images/" aria-current="page"' in page and 'href="/admin/"' not in page
    assert 'href="/jobs/" aria-current="page"' in _client(member).get("/jobs/").content.decode()
    assert 'href="/import/" aria-current="page"' in _client(member).get("/load/").content.decode()
    assert 'href="/admin/"' in _client(staff).get("/").content.decode()
