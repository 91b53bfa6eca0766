"""fsck: every referenced blob verified, orphans listed, broken images named; repair never deletes
what a row references."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from imagestore.blobs import get_store
from imagestore.models import HousekeepingRun, Image
from imagestore.services.fsck import check, fsck

pytestmark = pytest.mark.django_db


@pytest.fixture
def damaged(store_root: Path, make_image):  # type: ignore[no-untyped-def]
    """Three images: one whole, one whose layer blob is gone, one whose layer blob has a byte changed;
    plus an orphan blob and a container folder with no row."""
    store = get_store()
    whole = make_image("whole:1", marker="whole")
    missing = make_image("missing:1", marker="missing")
    corrupt = make_image("corrupt:1", marker="corrupt")
    missing_digest = missing.layers.get().digest
    missing_bytes = store.read_bytes(missing_digest)
    store.path(missing_digest).unlink()
    corrupt_digest = corrupt.layers.get().digest
    path = store.path(corrupt_digest)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # same size, other bytes
    path.write_bytes(bytes(data))
    orphan = str(store.put_bytes(b"nobody references me"))
    orphan_container = store_root / "containers" / secrets.token_hex(32)
    (orphan_container / "rootfs").mkdir(parents=True)
    return {"whole": whole, "missing": missing, "corrupt": corrupt, "missing_digest": missing_digest,
            "missing_bytes": missing_bytes, "corrupt_digest": corrupt_digest, "orphan": orphan,
            "orphan_container": orphan_container}


def test_fsck_finds_missing_corrupt_and_orphans_and_names_the_broken_images(damaged) -> None:  # type: ignore[no-untyped-def]
    d = damaged
    report = check(grace_seconds=0)
    by_kind = {(f.kind, f.subject): f for f in report.findings}
    assert by_kind[("missing blob", d["missing_digest"])].images == [d["missing"].id]
    corrupt = by_kind[("corrupt blob", d["corrupt_digest"])]
    assert corrupt.images == [d["corrupt"].id] and "hash to" in corrupt.detail
    assert set(report.broken_images) == {d["missing"].id, d["corrupt"].id}
    assert report.broken == 2
    orphans = {f.subject for f in report.findings if f.kind.startswith("orphan")}
    assert f"sha256/{d['orphan'][7:9]}/{d['orphan'][7:]}" in orphans
    assert f"containers/{d['orphan_container'].name}" in orphans
    # A check changes nothing.
    assert get_store().exists(d["orphan"]) and d["orphan_container"].exists()
    assert not Image.objects.filter(broken=True).exists()


def test_repair_removes_orphans_marks_broken_images_and_keeps_every_referenced_blob(damaged, member,
                                                                                    client_for) -> None:  # type: ignore[no-untyped-def]
    d = damaged
    store = get_store()
    run, report = fsck(repair=True, grace_seconds=0)
    assert run.what == "fsck" and run.repair and run.broken == 2
    assert not store.exists(d["orphan"]) and not d["orphan_container"].exists()
    assert run.freed["blobs"]["count"] == 1 and run.freed["containers"]["count"] == 1
    assert store.exists(d["corrupt_digest"])  # referenced: marked, never deleted
    for image in (d["whole"], d["corrupt"]):
        assert store.exists(image.id) and store.exists(image.layers.get().digest)
    broken = {i.id: i.broken_reason for i in Image.objects.filter(broken=True)}
    assert set(broken) == {d["missing"].id, d["corrupt"].id}
    assert "missing blob" in broken[d["missing"].id] and "corrupt blob" in broken[d["corrupt"].id]
    body = client_for(member).get(f"/api/v1/images/{d['missing'].id}/").json()
    assert body["broken"] is True and d["missing_digest"] in body["broken_reason"]
    assert HousekeepingRun.objects.get(pk=run.pk).findings

    # The blob comes back (pulled again): the next repair says the image is whole.
    store.put_bytes(d["missing_bytes"])
    fsck(repair=True, grace_seconds=0)
    assert set(Image.objects.filter(broken=True).values_list("id", flat=True)) == {d["corrupt"].id}


def test_a_clean_store_has_no_findings(make_image) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    report = check(grace_seconds=0)
    assert report.findings == [] and report.broken == 0 and report.blobs_checked == 2


def test_what_the_store_does_not_own_is_listed_and_left_alone(make_image, store_root: Path) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    (store_root / "backups").mkdir()
    stray = store_root / "sha256" / "README"
    stray.write_text("not a blob")
    run, report = fsck(repair=True, grace_seconds=0)
    assert [(f.kind, f.subject) for f in report.findings] == [
        ("stray in the blob tree", "sha256/README"), ("unknown entry", "backups")]
    assert report.broken == 0 and stray.exists() and (store_root / "backups").exists()


def test_config_not_matching_its_layers_breaks_the_image(make_image) -> None:  # type: ignore[no-untyped-def]
    from imagestore.models import ImageLayer

    a = make_image("a:1", marker="a")
    b = make_image("b:1", marker="b")
    ImageLayer.objects.filter(image=a).update(layer=b.layers.get())
    report = check(grace_seconds=0)
    assert set(report.broken_images) == {a.id}
    assert any(f.kind == "broken image" and f.subject == a.id for f in report.findings)


def test_a_container_row_without_its_folder_is_broken(make_image, settings) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from imagestore.services import containers

    settings.CONTAINER_ROOTFS = "copy"
    make_image("busybox:latest")
    container = containers.create_container("busybox:latest", cmd=["/bin/sh"])
    assert check(grace_seconds=0).broken == 0  # its folder and its snapshot are in use, not orphans
    shutil.rmtree(containers.container_dir(container))
    report = check(grace_seconds=0)
    assert report.broken == 1
    assert [f.kind for f in report.findings if f.broken] == ["container without its folder"]


def test_an_image_registered_while_fsck_reads_the_rows_is_left_for_the_next_run(make_image, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The three reads (layers, images, their links) are not one snapshot: an image whose layer
    committed after the first read was a KeyError (the fsck job failed as an internal error)."""
    from imagestore.models import Layer
    from imagestore.services import fsck as fsck_module

    make_image("busybox:latest")
    real = Layer.objects

    class LayersReadEarlier:
        """The layer rows as the first read saw them: before this image's layer committed."""

        def values_list(self, *fields: str):  # type: ignore[no-untyped-def]
            return real.none().values_list(*fields)

    monkeypatch.setattr(fsck_module.Layer, "objects", LayersReadEarlier())
    report = check()
    assert not report.broken
