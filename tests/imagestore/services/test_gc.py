"""Housekeeping on a lived-in data root: every folder swept by its own rule, nothing in use touched."""

from __future__ import annotations

import fcntl
import os
import secrets
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from imagestore.blobs import get_store
from imagestore.models import HousekeepingRun, Image, Job
from imagestore.services import containers
from imagestore.services.gc import collect_garbage
from imagestore.services.remove import chain_ids, remove_image

pytestmark = pytest.mark.django_db

HOUR = 3600


def _old(path: Path, seconds: float = 2 * HOUR) -> Path:
    past = time.time() - seconds
    os.utime(path, (past, past), follow_symlinks=False)
    return path


def _file(path: Path, data: bytes = b"x" * 100, *, old: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return _old(path) if old else path


def _job(kind: str, state: str, params: dict | None = None, finished_ago: float | None = None) -> Job:  # type: ignore[type-arg]
    finished = timezone.now() - timedelta(seconds=finished_ago) if finished_ago is not None else None
    return Job.objects.create(kind=kind, state=state, params=params or {}, finished_at=finished)


@pytest.fixture
def lived_in(store_root: Path, make_image, settings):  # type: ignore[no-untyped-def]
    """A store as weeks of use leave it: something to keep and something to drop in every folder."""
    settings.CONTAINER_ROOTFS = "copy"
    settings.EXPORT_RETENTION = 86400
    store = get_store()
    image = make_image("busybox:latest")
    layer = image.layers.get()
    for digest in (image.id, layer.digest):
        _old(store.path(digest))  # referenced blobs are kept however old
    orphan_blob = store.put_bytes(b"a layer nobody references any more")
    _old(store.path(orphan_blob))
    young_blob = store.put_bytes(b"written by a pull that has not registered it yet")
    container = containers.create_container("busybox:latest", cmd=["/bin/sh"])
    c = {
        "image": image, "layer": layer, "orphan_blob": str(orphan_blob), "young_blob": str(young_blob),
        "container": container, "snapshot": containers.snapshot_dir(container.snapshot),
        "container_dir": containers.container_dir(container),
    }
    uploads = store_root / "uploads"
    running = _job("load", "running", {"upload_path": str(uploads / "upload-running")})
    c["upload_running"] = _file(uploads / "upload-running", old=True)
    _job("load", "failed", {"upload_path": str(uploads / "upload-failed")}, finished_ago=60)
    c["upload_failed"] = _file(uploads / "upload-failed")  # fresh, but its job ended
    c["upload_stray_old"] = _file(uploads / "tmpabc.upload.tar", old=True)
    c["upload_in_progress"] = _file(uploads / "tmpdef.upload.tar")  # Django still receiving it
    exports = store_root / "exports"
    fresh = _job("save", "succeeded", finished_ago=60)
    c["export_fresh"] = _file(exports / f"{fresh.id}.tar")
    expired = _job("save", "succeeded", finished_ago=2 * 86400)
    c["export_expired"] = _file(exports / f"{expired.id}.tar")
    failed = _job("save", "failed", finished_ago=60)
    c["export_failed_partial"] = _file(exports / f"{failed.id}.tar.partial")
    saving = _job("save", "running")
    c["export_running_partial"] = _file(exports / f"{saving.id}.tar.partial", old=True)
    locks = store_root / "locks"
    c["lock_free"] = _file(locks / ("a" * 64), b"", old=True)
    c["lock_free_note"] = _file(locks / f"{'a' * 64}.diffid", b"sha256:x 1", old=True)
    c["lock_held"] = _file(locks / ("b" * 64), b"", old=True)
    tmp = store.tmp_dir
    c["tmp_old"] = _file(tmp / "blob-left-by-a-killed-worker", old=True)
    c["tmp_young"] = _file(tmp / "blob-being-written")
    staging = tmp / "load-killed"
    _file(staging / "blobs" / "sha256" / "ff", old=True)
    _old(staging / "blobs" / "sha256")
    _old(staging / "blobs")
    c["tmp_old_dir"] = _old(staging)
    pin = tmp / f"pin-{uuid.uuid4().hex}"
    os.link(store.path(layer.digest), pin)  # a running job's pin: an old mtime, a fresh link
    c["tmp_pin"] = pin
    c["orphan_container"] = _file(store_root / "containers" / secrets.token_hex(32) / "rootfs" / "etc" / "hostname")
    c["unused_snapshot"] = _file(store_root / "snapshots" / ("c" * 64) / "etc" / "hostname")
    c["running_job"] = running
    # Old files inside what is in use, and in a folder the store does not own: never touched.
    c["container_file"] = _file(c["container_dir"] / "rootfs" / "var" / "old-log", old=True)
    c["snapshot_file"] = _file(c["snapshot"] / "usr" / "old-file", old=True)
    c["unknown"] = _file(store_root / "backups" / "old.tar", old=True)
    return c


def test_gc_on_a_lived_in_store_removes_exactly_what_no_one_owns(lived_in) -> None:  # type: ignore[no-untyped-def]
    c = lived_in
    store = get_store()
    with open(c["lock_held"]) as held:  # a pull downloading that blob right now
        fcntl.flock(held, fcntl.LOCK_EX)
        run = collect_garbage(grace_seconds=HOUR)
    assert run.errors == []
    gone = ["upload_failed", "upload_stray_old", "export_expired", "export_failed_partial", "lock_free",
            "lock_free_note", "tmp_old", "tmp_old_dir"]
    kept = ["upload_running", "upload_in_progress", "export_fresh", "export_running_partial", "lock_held",
            "tmp_young", "tmp_pin", "snapshot", "container_dir", "container_file", "snapshot_file", "unknown",
            # younger than the grace: a container being created has its folder before its row
            "orphan_container", "unused_snapshot"]
    assert [k for k in gone if c[k].exists()] == []
    assert [k for k in kept if not c[k].exists()] == []
    assert not store.exists(c["orphan_blob"])
    assert store.exists(c["young_blob"]) and store.exists(c["layer"].digest) and store.exists(c["image"].id)
    assert run.freed["blobs"]["count"] == 1 and run.freed["uploads"]["count"] == 2
    assert run.freed["exports"]["count"] == 2 and run.freed["locks"]["count"] == 1
    assert run.freed["tmp"] == {"count": 2, "bytes": 200}
    assert run.freed_bytes > 0 and run.finished_at is not None
    assert HousekeepingRun.objects.get() == run

    # Past the grace, the orphan container folder and the unused snapshot go; the used ones stay.
    run = collect_garbage(grace_seconds=0)
    assert run.errors == []
    assert not c["orphan_container"].exists() and not c["unused_snapshot"].exists()
    assert not c["orphan_container"].parent.parent.exists()
    assert c["snapshot"].is_dir() and (c["container_dir"] / "rootfs").is_dir()
    assert c["container_file"].exists() and c["snapshot_file"].exists() and c["unknown"].exists()
    assert c["upload_running"].exists() and c["export_fresh"].exists()  # owned by job state, not age
    assert store.exists(c["layer"].digest) and store.exists(c["image"].id)
    assert run.freed["containers"]["count"] == 1 and run.freed["snapshots"]["count"] == 1


def test_dry_run_removes_nothing_and_says_what_it_would(lived_in) -> None:  # type: ignore[no-untyped-def]
    c = lived_in
    run = collect_garbage(grace_seconds=HOUR, dry_run=True)
    assert run.dry_run and run.freed["uploads"]["count"] == 2
    assert c["upload_failed"].exists() and c["tmp_old_dir"].exists() and c["lock_free"].exists()
    assert get_store().exists(c["orphan_blob"])
    assert {item["path"] for item in run.removed} >= {"uploads/upload-failed", "tmp/load-killed"}


def test_a_snapshot_an_overlay_still_mounts_is_kept(lived_in, store_root: Path) -> None:  # type: ignore[no-untyped-def]
    """An orphan container folder still mounted over a snapshot: the snapshot stays while mounted."""
    c = lived_in
    snapshot = c["unused_snapshot"].parent.parent
    orphan = store_root / "containers" / secrets.token_hex(32)
    for d in ("upper", "work", "rootfs"):
        (orphan / d).mkdir(parents=True)
    if not containers._mount_overlay(snapshot, orphan / "upper", orphan / "work", orphan / "rootfs"):
        pytest.skip("overlay mounts are not allowed here")
    run = collect_garbage(grace_seconds=0)
    assert snapshot.is_dir()  # an overlay had it as its lower dir during the sweep
    assert not orphan.exists() and not os.path.ismount(orphan / "rootfs")  # unmounted, then removed
    assert run.freed["containers"]["count"] == 2
    collect_garbage(grace_seconds=0)
    assert not snapshot.exists()  # nothing mounts it any more


def test_the_hourly_task_sweeps_and_records(lived_in) -> None:  # type: ignore[no-untyped-def]
    from imagestore.tasks import collect_garbage as task

    assert task() > 0
    run = HousekeepingRun.objects.get()
    assert run.trigger == "beat" and run.what == "gc" and run.errors == []


@pytest.mark.django_db(transaction=True)
def test_removal_rolled_back_keeps_its_blobs(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    layer = image.layers.get()
    store = get_store()
    with pytest.raises(RuntimeError), transaction.atomic():
        assert remove_image("busybox:latest")[-1] == {"Deleted": chain_ids([layer.diff_id])[0]}
        raise RuntimeError("something later in the same transaction failed")
    assert Image.objects.filter(pk=image.pk).exists()
    assert store.exists(layer.digest) and store.exists(image.id)
    remove_image("busybox:latest")
    assert not store.exists(layer.digest) and not store.exists(image.id)  # committed: they go


@pytest.mark.django_db(transaction=True)
def test_a_blob_a_committed_row_references_again_survives_the_deferred_deletion(make_image) -> None:  # type: ignore[no-untyped-def]
    """The deletion after commit asks the database again: a layer re-registered in between stays."""
    from imagestore.services.gc import delete_blobs_on_commit

    image = make_image("busybox:latest")
    orphan = str(get_store().put_bytes(b"unreferenced"))
    with transaction.atomic():
        delete_blobs_on_commit([image.layers.get().digest, image.id, orphan])
    assert get_store().exists(image.layers.get().digest) and get_store().exists(image.id)
    assert not get_store().exists(orphan)


@pytest.mark.django_db(transaction=True)
def test_a_name_deleted_while_a_registration_commits_is_put_back(make_image) -> None:  # type: ignore[no-untyped-def]
    """A deferred deletion may check the rows just before a registration's are visible; the
    registration puts its pinned names back once committed, under the same names lock."""
    from imagestore.oci.config import ImageConfig
    from imagestore.services.store import LayerRecord, register_image

    image = make_image("busybox:latest")
    layer = image.layers.get()
    store = get_store()
    config = ImageConfig.parse(store.read_bytes(image.id))
    record = LayerRecord(layer.diff_id, layer.digest, layer.media_type, layer.size, layer.uncompressed_size)
    with store.pins() as pins, transaction.atomic():
        register_image(config, [record], pins=pins)
        store.path(layer.digest).unlink()  # what a deletion that looked a moment too early does
    assert store.exists(layer.digest) and store.exists(image.id)
