"""GC, even with a grace of 0 (``manage.py collect_garbage --grace 0``), never removes the
temporary files of work still running: found by the day-in-the-life test with GC run beside
the worker, where a commit failed with "internal error: FileNotFoundError" because GC had
removed its layer tar from tmp/. What a process holds while it works is flocked; a process
that dies releases it, and the next GC removes what it left."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from imagestore.blobs import get_store
from imagestore.models import Image
from imagestore.services import commit as commit_service
from imagestore.services import containers
from imagestore.services import load as load_service
from imagestore.services.gc import collect_garbage
from imagestore.services.save import save_to_file
from tests.builders import tar_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def _gc_now() -> None:
    run = collect_garbage(0)
    assert run.errors == []


def test_a_blob_being_written_is_kept_and_its_leftover_removed_once_abandoned() -> None:
    store = get_store()
    writer = store.writer()
    writer.write(b"half a layer")
    _gc_now()
    assert writer.temp_path.exists()
    digest = writer.commit()
    assert store.exists(digest)

    abandoned = store.writer()
    abandoned.write(b"a writer whose process died")
    abandoned._file.close()  # what the kernel does when the process dies: its lock goes
    _gc_now()
    assert not abandoned.temp_path.exists()


def test_a_commit_keeps_its_layer_tar_while_gc_runs(make_image, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings.CONTAINER_ROOTFS = "copy"
    make_image("base:1")
    container = containers.create_container("base:1", cmd=["true"])
    containers.copy_into(container, "/etc", io.BytesIO(tar_bytes([("motd", b"hello\n")])))
    layer_tar = commit_service._layer_tar

    def tar_then_gc(*args: Any) -> None:
        layer_tar(*args)
        _gc_now()

    monkeypatch.setattr(commit_service, "_layer_tar", tar_then_gc)
    image = commit_service.commit_container(container.id, repository="committed")
    assert Image.objects.filter(pk=image.id, tags__name="latest").exists()
    assert list((Path(get_store().root) / "tmp").iterdir()) == []


def test_a_load_keeps_its_staged_archive_while_gc_runs(make_image, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    image = make_image("loaded:1")
    archive = tmp_path / "images.tar"
    save_to_file(["loaded:1"], archive)
    from imagestore.services.remove import remove_image

    remove_image(image.id, force=True)
    stage = load_service.stage_archive

    def stage_then_gc(*args: Any, **kwargs: Any) -> Any:
        staged = stage(*args, **kwargs)
        _gc_now()
        return staged

    monkeypatch.setattr(load_service, "stage_archive", stage_then_gc)
    with open(archive, "rb") as source:
        assert load_service.load_archive(source) == ["Loaded image: loaded:1"]
    assert Image.objects.filter(pk=image.id).exists()
    assert list((Path(get_store().root) / "tmp").iterdir()) == []
