"""Finding images the ways docker accepts, and the docker images table."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imagestore.errors import AmbiguousImage, BadRequest, ImageNotFound
from imagestore.models import Image
from imagestore.oci.errors import InvalidReference
from imagestore.services.images import ImageFilters, list_image_rows, resolve_image
from imagestore.services.tag import tag_image

pytestmark = pytest.mark.django_db


def _rows(**filters) -> list[tuple[str | None, str | None, str]]:  # type: ignore[no-untyped-def]
    return [(r["row_repository"], r["row_tag"], r["row_image"]) for r in list_image_rows(ImageFilters(**filters))]


def test_resolve_by_name_tag_id_and_prefix(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    tag_image(image, "127.0.0.1:5000/tools/centos")
    assert resolve_image("centos:6.6") == image
    assert resolve_image("docker.io/library/centos:6.6") == image
    assert resolve_image("127.0.0.1:5000/tools/centos") == image  # :latest implied
    assert resolve_image(image.id) == image
    assert resolve_image(image.hex) == image
    assert resolve_image(image.hex[:4]) == image
    assert resolve_image("sha256:" + image.hex[:12]) == image


def test_missing_image_is_not_found_with_its_name(make_image) -> None:  # type: ignore[no-untyped-def]
    make_image("centos:6.6")
    with pytest.raises(ImageNotFound, match="No such image: centos:7"):
        resolve_image("centos:7")


def test_bad_reference_is_invalid_not_missing(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidReference, match="must be lowercase"):
        resolve_image("Centos:7")
    with pytest.raises(BadRequest):
        resolve_image("   ")


def test_ambiguous_prefix_is_an_error(make_image) -> None:  # type: ignore[no-untyped-def]
    images = [make_image(None, marker=str(i)) for i in range(40)]
    # With 40 ids, some pair shares its first hex digit.
    firsts = [i.hex[0] for i in images]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(AmbiguousImage, match="multiple images"):
        resolve_image(shared)


def test_images_rows_one_per_tag_and_none_for_dangling(make_image) -> None:  # type: ignore[no-untyped-def]
    a = make_image("centos:6.6", marker="a")
    tag_image(a, "centos:latest")
    dangling = make_image(None, marker="b")
    rows = _rows()
    assert ("centos", "6.6", a.id) in rows and ("centos", "latest", a.id) in rows
    assert (None, None, dangling.id) in rows
    assert len(rows) == 3


def test_moving_a_tag_leaves_the_old_image_dangling(make_image) -> None:  # type: ignore[no-untyped-def]
    old = make_image("app:1", marker="old")
    new = make_image(None, marker="new")
    tag_image(new, "app:1")
    assert _rows(dangling=True) == [(None, None, old.id)]
    assert _rows(dangling=False) == [("app", "1", new.id)]


def test_reference_filter_globs_like_docker(make_image) -> None:  # type: ignore[no-untyped-def]
    a = make_image("centos:6.6", marker="a")
    tag_image(a, "centos:7")
    b = make_image("tools/centos:1", marker="b")
    make_image(None, marker="c")
    assert sorted(r[:2] for r in _rows(reference=["centos:*"])) == [("centos", "6.6"), ("centos", "7")]
    assert sorted(r[:2] for r in _rows(reference=["centos"])) == [("centos", "6.6"), ("centos", "7")]
    assert [r[2] for r in _rows(reference=["*/centos"])] == [b.id]
    assert _rows(reference=["nomatch*"]) == []


def test_bad_reference_glob_is_a_clear_error(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadRequest, match="syntax error in pattern"):
        _rows(reference=["[-x]"])


def test_before_and_since_filters(make_image) -> None:  # type: ignore[no-untyped-def]
    first, second, third = (make_image(f"img:{i}", marker=str(i)) for i in range(3))
    base = first.created
    for i, image in enumerate((first, second, third)):
        Image.objects.filter(pk=image.pk).update(created=base + timedelta(hours=i))
    assert [r[1] for r in _rows(before="img:2")] == ["1", "0"]
    assert [r[1] for r in _rows(since="img:0")] == ["2", "1"]


def test_label_filter_by_key_and_value(make_image) -> None:  # type: ignore[no-untyped-def]
    a = make_image("a:1", marker="a")
    b = make_image("b:1", marker="b")
    Image.objects.filter(pk=a.pk).update(labels={"org.example.team": "core"})
    Image.objects.filter(pk=b.pk).update(labels={"org.example.team": "web"})
    assert [r[0] for r in _rows(labels=["org.example.team"])] == ["a", "b"] or \
        sorted(r[0] for r in _rows(labels=["org.example.team"])) == ["a", "b"]
    assert [r[0] for r in _rows(labels=["org.example.team=web"])] == ["b"]


def test_intermediate_parents_hidden_unless_all(make_image) -> None:  # type: ignore[no-untyped-def]
    parent = make_image(None, marker="parent")
    child = make_image("child:1", marker="child")
    Image.objects.filter(pk=child.pk).update(parent=parent)
    assert [r[2] for r in _rows()] == [child.id]
    assert sorted(r[2] for r in _rows(all=True)) == sorted([child.id, parent.id])


def test_list_costs_one_query_whatever_the_number_of_images(make_image) -> None:  # type: ignore[no-untyped-def]
    for i in range(12):
        make_image(f"many:{i}", marker=str(i))
    with CaptureQueriesContext(connection) as queries:
        rows = list(list_image_rows(ImageFilters()))
    assert len(rows) == 12
    assert len(queries) == 1
