"""Every layer is indexed once when it arrives, from the pass that verifies it; GC, fsck and the
backfill command know the index folder."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from imagestore.blobs import BlobStore
from imagestore.models import Layer
from imagestore.services import layerindex
from imagestore.services.fsck import check
from imagestore.services.gc import collect_garbage
from imagestore.services.import_ import import_image
from imagestore.services.load import load_archive
from imagestore.services.remove import remove_image
from imagestore.services.save import archive_stream, plan_save
from tests.builders import simple_rootfs_tar

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_blob_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a stored blob back fails: indexing must come from the one pass."""
    monkeypatch.setattr(BlobStore, "open", _refuse)


def _refuse(self: BlobStore, digest: object) -> None:
    raise AssertionError(f"blob {digest} was read again")


def _paths(diff_id: str) -> set[str]:
    return {e.path for e in layerindex.load(diff_id).entries}


def test_import_indexes_its_layer_without_reading_the_blob_again(no_blob_reads) -> None:  # type: ignore[no-untyped-def]
    image = import_image(io.BytesIO(simple_rootfs_tar()), repository="box:1")
    layer = image.layers.get()
    index = layerindex.load(layer.diff_id)
    by_path = {e.path: e for e in index.entries}
    assert set(by_path) == {".", "bin", "bin/busybox", "bin/sh", "bin/ls", "etc", "etc/hostname",
                            "etc/hostname.bak", "dev", "dev/null"}
    assert by_path["etc/hostname"].size == 6 and by_path["etc/hostname"].digest.startswith("sha256:")
    assert layerindex.index_path(layer.diff_id).parent == layerindex.index_dir()


def test_load_indexes_each_layer_once_while_staging(make_image, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    image = make_image("box:1")
    layer = image.layers.get()
    archive = b"".join(archive_stream(plan_save(["box:1"])))
    remove_image("box:1", force=True)
    layerindex.index_path(layer.diff_id).unlink(missing_ok=True)
    assert not Layer.objects.exists()
    monkeypatch.setattr(BlobStore, "open", _refuse)
    load_archive(io.BytesIO(archive))
    assert "etc/hostname" in _paths(layer.diff_id)


def test_gc_removes_the_index_of_a_removed_layer_and_leaves_foreign_files(make_image, store_root: Path) -> None:  # type: ignore[no-untyped-def]
    keep, drop = make_image("keep:1", marker="a"), make_image("drop:1", marker="b")
    kept_path = layerindex.index_path(keep.layers.get().diff_id)
    dropped_path = layerindex.index_path(drop.layers.get().diff_id)
    remove_image("drop:1")
    folder = layerindex.index_dir()
    foreign = [folder / "README", folder / ("f" * 64 + ".zst.part"), folder / "sub"]
    foreign[0].write_text("not ours")
    foreign[1].write_bytes(b"x")
    foreign[2].mkdir()
    os.symlink("/etc/passwd", folder / ("e" * 64 + ".zst"))
    past = time.time() - 7200
    for path in [kept_path, dropped_path, *foreign]:
        os.utime(path, (past, past))
    run = collect_garbage()
    assert run.errors == []
    assert not dropped_path.exists() and kept_path.exists()
    assert all(p.exists() for p in foreign) and (folder / ("e" * 64 + ".zst")).is_symlink()
    assert run.freed["index"]["count"] == 1


def test_a_young_index_without_its_layer_row_is_kept(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("drop:1")
    path = layerindex.index_path(image.layers.get().diff_id)
    remove_image("drop:1")
    collect_garbage()
    assert path.exists()  # a pull or load may be about to register its layer


def test_fsck_reports_missing_and_stray_indexes_and_repair_rebuilds(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("box:1")
    diff_id = image.layers.get().diff_id
    before = _paths(diff_id)
    path = layerindex.index_path(diff_id)
    path.unlink()
    (layerindex.index_dir() / "notes.txt").write_text("x")
    report = check()
    kinds = {(f.kind, f.subject) for f in report.findings}
    assert ("layer not indexed", diff_id) in kinds
    assert ("stray in the index folder", "index/sha256/notes.txt") in kinds
    assert report.broken == 0  # the image itself is whole
    path.write_bytes(b"garbage")
    assert ("unreadable layer index", diff_id) in {(f.kind, f.subject) for f in check().findings}
    repaired = check(repair=True)
    assert f"indexed layer {diff_id}" in repaired.repaired
    layerindex._cache.clear()
    assert _paths(diff_id) == before
    assert (layerindex.index_dir() / "notes.txt").exists()


def test_index_layers_backfills_what_was_stored_before(make_image, settings, capsys) -> None:  # type: ignore[no-untyped-def]
    settings.IMAGESTORE_INDEX_LAYERS = False
    image = make_image("old:1")
    diff_id = image.layers.get().diff_id
    assert not layerindex.has_index(diff_id)
    with pytest.raises(layerindex.NotIndexed):
        layerindex.load(diff_id)
    call_command("index_layers")
    assert "1 indexed, 0 already indexed, 0 failed" in capsys.readouterr().out
    assert "etc/hostname" in _paths(diff_id)
    call_command("index_layers")
    assert "0 indexed, 1 already indexed" in capsys.readouterr().out


def test_docker_diff_takes_the_image_side_from_the_index(make_image, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from imagestore.services import containers
    from imagestore.services.containers import diff as container_diff
    from imagestore.services.containers.roots import ensure_rootfs

    settings.CONTAINER_ROOTFS = "copy"
    make_image("box:1")
    container = containers.create_container("box:1", cmd=["/bin/sh"])
    root = ensure_rootfs(container)
    (root / "etc" / "hostname").write_text("changed\n")
    (root / "etc" / "new.conf").write_text("x")
    (root / "bin" / "busybox").unlink()

    def no_snapshot(*args: object) -> None:
        raise AssertionError("the snapshot was walked")

    monkeypatch.setattr(container_diff, "snapshot_dir", no_snapshot)
    assert containers.container_changes(container) == [
        {"Path": "/bin", "Kind": 0}, {"Path": "/bin/busybox", "Kind": 2}, {"Path": "/etc", "Kind": 0},
        {"Path": "/etc/hostname", "Kind": 0},
        {"Path": "/etc/hostname.bak", "Kind": 0},  # a hard link to /etc/hostname: the same inode changed
        {"Path": "/etc/new.conf", "Kind": 1}]
