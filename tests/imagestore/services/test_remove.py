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


@pytest.mark.django_db(transaction=True)  # removal deletes blobs once it commits
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


def _chain(make_image):  # type: ignore[no-untyped-def]
    """grandparent <- parent <- child, parents untagged (as commits leave them)."""
    grandparent = make_image(None, marker="g")
    parent = make_image(None, marker="p")
    child = make_image("child:1", marker="c")
    Image.objects.filter(pk=parent.pk).update(parent=grandparent)
    Image.objects.filter(pk=child.pk).update(parent=parent)
    return grandparent, parent, child


def test_rmi_prunes_untagged_parents(make_image) -> None:  # type: ignore[no-untyped-def]
    grandparent, parent, child = _chain(make_image)
    records = remove_image("child:1")
    deleted = [r["Deleted"] for r in records if "Deleted" in r]
    assert child.id in deleted and parent.id in deleted and grandparent.id in deleted
    assert not Image.objects.exists()


def test_rmi_noprune_keeps_untagged_parents(make_image) -> None:  # type: ignore[no-untyped-def]
    grandparent, parent, child = _chain(make_image)
    records = remove_image("child:1", noprune=True)
    assert {"Deleted": child.id} in records and {"Deleted": parent.id} not in records
    assert set(Image.objects.values_list("id", flat=True)) == {grandparent.id, parent.id}


def test_rmi_of_a_parent_with_children_cannot_be_forced(make_image) -> None:  # type: ignore[no-untyped-def]
    _grandparent, parent, _child = _chain(make_image)
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image has dependent child images"):
        remove_image(parent.id, force=True)


def test_rmi_several_names_reports_each_and_goes_on(make_image) -> None:  # type: ignore[no-untyped-def]
    from imagestore.services.remove import remove_images

    a = make_image("a:1", marker="a")
    b = make_image("b:1", marker="b")
    _container(b)
    results = remove_images(["a:1", "b:1", "nothere:1", "Bad:1"])
    assert results[0]["name"] == "a:1" and {"Deleted": a.id} in results[0]["records"]
    assert results[1]["status"] == 409 and "must force" in results[1]["error"]
    assert results[2] == {"name": "nothere:1", "error": "No such image: nothere:1", "status": 404}
    assert results[3]["status"] == 400
    assert not Image.objects.filter(pk=a.pk).exists() and Image.objects.filter(pk=b.pk).exists()


def test_prune_removes_dangling_and_reports_space(make_image) -> None:  # type: ignore[no-untyped-def]
    from imagestore.services.remove import prune_images

    kept = make_image("kept:1", marker="kept")
    dangling = make_image(None, marker="dangling")
    used = make_image(None, marker="used")
    _container(used)
    layer_size = dangling.layers.get().size
    result = prune_images()
    assert {"Deleted": dangling.id} in result["ImagesDeleted"]
    assert result["SpaceReclaimed"] == dangling.config_size + layer_size
    assert set(Image.objects.values_list("id", flat=True)) == {kept.id, used.id}


def test_prune_all_removes_every_image_no_container_uses(make_image) -> None:  # type: ignore[no-untyped-def]
    from imagestore.services.remove import prune_images

    make_image("tagged:1", marker="t")
    used = make_image("used:1", marker="u")
    _container(used)
    grandparent, parent, child = _chain(make_image)
    result = prune_images(all=True)
    assert {"Untagged": "tagged:1"} in result["ImagesDeleted"]
    assert {"Deleted": grandparent.id} in result["ImagesDeleted"]
    assert list(Image.objects.values_list("id", flat=True)) == [used.id]
    assert prune_images() == {"ImagesDeleted": [], "SpaceReclaimed": 0}


def test_preview_says_what_would_go_and_changes_nothing(make_image) -> None:  # type: ignore[no-untyped-def]
    from imagestore.services.remove import preview_removal

    image = make_image("centos:6.6")
    layer = image.layers.get()
    preview = preview_removal("centos:6.6")
    assert preview == [{"Untagged": "centos:6.6"}, {"Deleted": image.id}, {"Deleted": chain_ids([layer.diff_id])[0]}]
    assert Image.objects.filter(pk=image.pk).exists() and Tag.objects.count() == 1
    assert get_store().exists(layer.digest) and get_store().exists(image.id)
    _container(image)
    with pytest.raises(Conflict, match="must force"):
        preview_removal("centos:6.6")
    assert preview_removal("centos:6.6", force=True) == [{"Untagged": "centos:6.6"}]
    assert Tag.objects.count() == 1
