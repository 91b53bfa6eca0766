from __future__ import annotations

import pytest

from imagestore.errors import BadRequest, ImageNotFound
from imagestore.models import Image, Repository, Tag
from imagestore.oci.errors import InvalidReference
from imagestore.services.tag import tag_image

pytestmark = pytest.mark.django_db


def test_same_image_under_several_names_keeps_one_id(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    tag_image(image, "centos:latest")
    tag_image(image, "127.0.0.1:5000/tools/centos:6.6")
    assert Image.objects.count() == 1
    names = sorted(str(t) for t in Tag.objects.select_related("repository"))
    assert names == ["127.0.0.1:5000/tools/centos:6.6", "centos:6.6", "centos:latest"]
    assert Repository.objects.get(name="127.0.0.1:5000/tools/centos").path == "tools/centos"
    image.refresh_from_db()
    assert image.last_tag_time is not None


def test_retagging_moves_the_tag(make_image) -> None:  # type: ignore[no-untyped-def]
    old = make_image("app:1", marker="old")
    new = make_image(None, marker="new")
    tag_image(new, "app:1")
    assert Tag.objects.get(name="1").image == new
    assert not old.tags.exists()


def test_tag_with_digest_is_refused(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image()
    with pytest.raises(BadRequest, match="digest"):
        tag_image(image, "app@sha256:" + "a" * 64)
    assert Tag.objects.count() == 1


def test_bad_tag_name_is_refused_and_nothing_written(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image()
    for bad in ("upper/Case", "app:-bad", "app:" + "x" * 129, ""):
        with pytest.raises(InvalidReference):
            tag_image(image, bad)
    assert Tag.objects.count() == 1 and Repository.objects.count() == 1


def test_tag_of_a_removed_image_is_not_found(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image(None)
    Image.objects.filter(pk=image.pk).delete()
    with pytest.raises(ImageNotFound):
        tag_image(image, "ghost:1")
    assert not Repository.objects.exists()
