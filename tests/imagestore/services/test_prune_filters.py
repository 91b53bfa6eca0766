"""``docker image prune`` and ``GET /images/json`` honour ``until`` and ``label`` / ``label!``
(moby's image_prune.go and images.go), bad values are Docker's 400, and ``GET /system/df``
reports sizes as Docker does."""

from __future__ import annotations

import io
import json

import pytest
from django.test import Client

from imagestore.models import Image
from imagestore.services.disk import disk_usage, layers_size
from imagestore.services.import_ import import_image
from imagestore.services.remove import prune_images, prune_options
from imagestore.services.tokens import create_token
from tests.builders import simple_rootfs_tar

pytestmark = pytest.mark.django_db


def _image(marker: str, name: str | None = None, *labels: str) -> Image:
    return import_image(io.BytesIO(simple_rootfs_tar(marker)), repository=name,
                        changes=[f"LABEL {label}" for label in labels])


@pytest.fixture
def docker(operator) -> Client:  # type: ignore[no-untyped-def]
    return Client(HTTP_AUTHORIZATION=f"Token {create_token(operator)[1]}")


def _filters(**f: list[str]) -> str:
    return json.dumps({k.replace("_not", "!"): {v: True for v in vs} for k, vs in f.items()})


def test_prune_until_removes_only_images_created_by_then() -> None:
    old = _image("old", "team/old:1")
    new = _image("new", "team/new:1")
    assert old.created and new.created and old.created < new.created
    between = old.created + (new.created - old.created) / 2
    result = prune_images(all=True, until=between)
    assert {"Deleted": old.id} in result["ImagesDeleted"]
    assert list(Image.objects.values_list("id", flat=True)) == [new.id]


def test_prune_labels_match_as_dockers_match_kv_list() -> None:
    a = _image("a", "team/a:1", "tier=web", "keep=yes")
    b = _image("b", "team/b:1", "tier=db")
    c = _image("c", "team/c:1")
    assert prune_images(**prune_options({"dangling": ["false"], "label": ["tier=web"]}))["ImagesDeleted"]
    assert set(Image.objects.values_list("id", flat=True)) == {b.id, c.id}
    prune_images(**prune_options({"dangling": ["false"], "label!": ["tier"]}))  # everything without a tier
    assert list(Image.objects.values_list("id", flat=True)) == [b.id]
    assert not Image.objects.filter(pk=a.pk).exists()


def test_prune_without_all_keeps_tagged_images_whatever_the_filters() -> None:
    tagged = _image("t", "team/t:1", "x=1")
    dangling = _image("d", None, "x=1")
    prune_images(**prune_options({"label": ["x=1"], "until": ["0s"]}))
    assert list(Image.objects.values_list("id", flat=True)) == [tagged.id]
    assert not Image.objects.filter(pk=dangling.pk).exists()


@pytest.mark.parametrize("filters, message", [
    ({"until": ["7d"]}, 'failed to parse value as time or duration: "7d"'),
    ({"until": ["1h", "2h"]}, "more than one until filter specified"),
    ({"bogus": ["1"]}, "invalid filter 'bogus'"),
    ({"dangling": ["maybe"]}, "invalid filter 'dangling=maybe'"),
    ({"label": ["=x"]}, "invalid filter 'label==x'"),
])
def test_bad_prune_filters_are_dockers_400(docker, filters, message) -> None:  # type: ignore[no-untyped-def]
    kept = _image("k", None)
    response = docker.post("/docker/v1.47/images/prune?filters=" + json.dumps(filters))
    assert response.status_code == 400 and response.json() == {"message": message}
    assert Image.objects.filter(pk=kept.pk).exists()


def test_docker_api_prune_and_list_take_until_and_labels(docker) -> None:  # type: ignore[no-untyped-def]
    old = _image("old", "team/old:1", "tier=web")
    new = _image("new", "team/new:1", "tier=web")
    assert old.created and new.created
    between = (old.created.timestamp() + new.created.timestamp()) / 2
    listed = docker.get("/docker/v1.47/images/json?filters=" + json.dumps({"until": [f"{between:.9f}"]})).json()
    assert [i["Id"] for i in listed] == [old.id]
    listed = docker.get("/docker/v1.47/images/json?filters=" + _filters(label_not=["tier=web"])).json()
    assert listed == []
    response = docker.get("/docker/v1.47/images/json?filters=" + json.dumps({"until": ["soon"]}))
    assert response.status_code == 400 and "soon" in response.json()["message"]
    pruned = docker.post("/docker/v1.47/images/prune?filters=" + json.dumps(
        {"dangling": ["false"], "until": [f"{between:.9f}"], "label": ["tier=web"]})).json()
    assert {"Deleted": old.id} in pruned["ImagesDeleted"] and pruned["SpaceReclaimed"] > 0
    assert list(Image.objects.values_list("id", flat=True)) == [new.id]


def test_rest_prune_and_list_take_until_and_labels(client_for, operator) -> None:  # type: ignore[no-untyped-def]
    web = _image("w", "team/w:1", "tier=web")
    db = _image("d", "team/d:1", "tier=db")
    api = client_for(operator)
    rows = api.get("/api/v1/images/", {"not_label": "tier=web", "until": "0s"}).json()["results"]
    assert [r["id"] for r in rows] == [db.id]
    assert api.post("/api/v1/images/prune/", {"all": True, "until": "banana"}, format="json").status_code == 400
    assert api.get("/api/v1/images/", {"until": "banana"}).status_code == 400
    result = api.post("/api/v1/images/prune/", {"all": True, "label": ["tier=web"]}, format="json").json()
    assert {"Deleted": web.id} in result["ImagesDeleted"]
    assert list(Image.objects.values_list("id", flat=True)) == [db.id]


def test_system_df_sizes_as_docker_reports_them(docker, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    a = _image("a", "team/a:1")
    b = _image("b", "team/b:1")
    with django_assert_max_num_queries(12):
        usage = disk_usage(["image", "build-cache"])
    assert usage["BuildCache"] == [] and "Containers" not in usage
    by_id = {i["Id"]: i for i in usage["Images"]}
    assert by_id[a.id]["Size"] == a.size and by_id[a.id]["SharedSize"] == 0 and by_id[a.id]["Containers"] == 0
    assert usage["LayersSize"] == layers_size() > 0
    freed = prune_images(all=True)["SpaceReclaimed"]
    assert freed == usage["LayersSize"]  # everything went: what df counted is what was freed
    df = docker.get("/docker/v1.47/system/df").json()
    assert df == {"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []}
    assert b.id not in {i["Id"] for i in df["Images"]}
    assert docker.get("/docker/v1.47/system/df?type=nonsense").status_code == 400
