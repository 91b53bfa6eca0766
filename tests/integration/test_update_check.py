"""Is a newer image available? Against the real registry: a new manifest pushed under the same
tag makes the image's ``update_available`` true (REST, list filter, Docker's /distribution);
pulling the tag again clears it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.test import Client

from imagestore.metrics import UPDATE_CHECKS
from imagestore.models import Image
from imagestore.services.import_ import import_image
from imagestore.services.pull import pull_image
from imagestore.services.push import push_image
from imagestore.services.tokens import create_token
from imagestore.services.updates import check_all
from tests.builders import simple_rootfs_tar
from tests.integration.registry import build_busybox_layout, skopeo_copy

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_new_manifest_under_the_tag_shows_an_update_and_a_pull_clears_it(  # type: ignore[no-untyped-def]
        tmp_path: Path, registry, operator, client_for, settings) -> None:
    settings.UPDATE_CHECK_SPACING = 0
    name = f"{registry.host}/tools/app:1"
    skopeo_copy(f"oci:{build_busybox_layout(tmp_path / 'umoci')}:busybox", f"docker://{name}")
    first = pull_image(name).image
    api = client_for(operator)
    answer = api.post(f"/api/v1/images/{name}/check-update/")
    assert answer.status_code == 200, answer.content
    assert answer.json()["update_available"] is False and answer.json()["update_checked_at"]

    # Someone pushes another image under the same tag.
    other = import_image(io.BytesIO(simple_rootfs_tar("newer")), repository=f"{registry.host}/tools/other:1")
    push_image(f"{registry.host}/tools/other:1")
    skopeo_copy(f"docker://{registry.host}/tools/other:1", f"docker://{name}", "--src-tls-verify=false")

    newer_before = UPDATE_CHECKS.labels(outcome="newer")._value.get()
    assert check_all() >= 1  # what beat runs
    assert UPDATE_CHECKS.labels(outcome="newer")._value.get() == newer_before + 1  # the metrics counter
    first.refresh_from_db()
    assert first.update_available is True and first.id != other.id
    rows = api.get("/api/v1/images/", {"update_available": "true"}).json()["results"]
    assert [(r["repository"], r["tag"], r["update_available"]) for r in rows] == [
        (f"{registry.host}/tools/app", "1", True)]
    checked = api.post(f"/api/v1/images/{name}/check-update/").json()
    assert checked["tags"][0]["remote"] != checked["tags"][0]["local"][0]
    docker = Client(HTTP_AUTHORIZATION=f"Token {create_token(operator)[1]}")
    distribution = docker.get(f"/docker/v1.47/distribution/{name}/json").json()
    assert distribution["Descriptor"]["digest"] == checked["tags"][0]["remote"]
    assert distribution["Platforms"][0]["os"] == "linux"

    again = pull_image(name).image  # the one click: pull the tag again
    assert again.id == other.id and again.update_available is False
    assert api.get("/api/v1/images/", {"update_available": "true"}).json()["results"] == []
    assert Image.objects.get(pk=first.pk).update_available is None  # the old image, now untagged: no tag to update


def test_an_imported_image_has_nothing_to_compare_with(make_image, client_for, operator) -> None:  # type: ignore[no-untyped-def]
    make_image("local/app:1")
    answer = client_for(operator).post("/api/v1/images/local/app:1/check-update/").json()
    assert answer["update_available"] is None and answer["tags"] == []
