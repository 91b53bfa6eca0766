"""docker rmi rules (the ones the foundation needs: the admin and API go through them)."""

from __future__ import annotations

import secrets

import pytest

from imagestore.blobs import get_store
from imagestore.errors import Conflict, ImageNotFound
from imagestore.models import Container, Image, Layer, Tag
from imagestore.services.remove import chain_ids, remove_image
from imagestore.services.tag import tag_image

pytestmark = pytest.mark.django_db


def _container(image: Image, state: str = "exited") -> Container:
    return Container.objects.create(id=secrets.token_hex(32), name=f"c{secrets.token_hex(3)}", image=image,
                                    state=state)


def test_rmi_by_tag_with_other_tags_only_untags(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    tag_image(image, "centos:latest")
    assert remove_image("centos:latest") == [{"Untagged": "centos:latest"}]
    assert Image.objects.filter(pk=image.pk).exists()


def test_rmi_last_tag_deletes_image_layers_and_blobs(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    layer = image.layers.get()
    store = get_store()
    records = remove_image("centos:6.6")
    assert records == [
        {"Untagged": "centos:6.6"},
        {"Deleted": image.id},
        {"Deleted": chain_ids([layer.diff_id])[0]},
    ]
    assert not Image.objects.exists() and not Layer.objects.exists()
    assert not store.exists(layer.digest) and not store.exists(image.id)


def test_rmi_keeps_layers_another_image_uses(make_image) -> None:  # type: ignore[no-untyped-def]
    a = make_image("a:1")
    b = make_image("b:1")
    assert a.pk != b.pk and a.layers.get() == b.layers.get()
    records = remove_image("a:1")
    assert records == [{"Untagged": "a:1"}, {"Deleted": a.id}]
    assert get_store().exists(b.layers.get().digest)


def test_rmi_by_id_in_several_repositories_needs_force(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    tag_image(image, "other/centos:1")
    with pytest.raises(Conflict, match=rf"unable to delete {image.short_id} \(must be forced\) - image is referenced in multiple repositories"):
        remove_image(image.short_id)
    assert Tag.objects.count() == 2
    records = remove_image(image.short_id, force=True)
    assert {"Untagged": "centos:6.6"} in records and {"Untagged": "other/centos:1"} in records
    assert {"Deleted": image.id} in records
    assert not Image.objects.exists()


def test_rmi_by_id_single_repository_untags_and_deletes(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    records = remove_image(image.id)
    assert records[:2] == [{"Untagged": "centos:6.6"}, {"Deleted": image.id}]


def test_image_of_a_stopped_container_needs_force_and_then_stays_dangling(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    container = _container(image)
    with pytest.raises(Conflict, match=f"container {container.short_id} is using its referenced image"):
        remove_image("centos:6.6")
    records = remove_image("centos:6.6", force=True)
    assert records == [{"Untagged": "centos:6.6"}]
    assert Image.objects.filter(pk=image.pk, tags__isnull=True).exists()


def test_image_of_a_running_container_cannot_be_removed_even_forced(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image(None)
    container = _container(image, state="running")
    with pytest.raises(Conflict, match=rf"\(cannot be forced\) - image is being used by running container {container.short_id}"):
        remove_image(image.id, force=True)
    assert Image.objects.filter(pk=image.pk).exists()


def test_rmi_of_missing_image_is_not_found(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ImageNotFound):
        remove_image("nothere:1")


def test_rmi_by_id_of_image_a_stopped_container_uses_needs_force(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    container = _container(image)
    with pytest.raises(Conflict, match=f"must be forced\\) - image is being used by stopped container {container.short_id}"):
        remove_image(image.short_id)
    assert Tag.objects.count() == 1
