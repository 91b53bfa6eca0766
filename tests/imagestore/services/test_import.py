"""docker import: each compression, the stored layer and config, and refused input."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path

import pytest

from imagestore.blobs import get_store
from imagestore.models import Image, Layer, Repository, Tag
from imagestore.oci.errors import CorruptArchive, InvalidReference, UnsafeArchive
from imagestore.oci.platform import host_platform
from imagestore.services.import_ import import_image
from imagestore.services.progress import RecordingProgress
from tests.builders import COMPRESSORS, link, simple_rootfs_tar, tar_bytes

pytestmark = pytest.mark.django_db


def _store_is_empty(root: Path) -> bool:
    blobs = [p for p in root.rglob("*") if p.is_file() and "uploads" not in p.parts]
    return blobs == [] and not Image.objects.exists() and not Layer.objects.exists()


@pytest.mark.parametrize("compression", ["tar", "gzip", "bzip2", "xz", "zstd"])
def test_import_of_each_compression_gives_the_same_layer(compression: str) -> None:
    tar = simple_rootfs_tar()
    image = import_image(io.BytesIO(COMPRESSORS[compression](tar)), repository="rootfs:1")
    layer = image.layers.get()
    assert layer.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    blob = get_store().read_bytes(layer.digest)
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer.digest
    assert gzip.decompress(blob) == tar
    assert layer.size == len(blob) and layer.uncompressed_size == len(tar)
    assert layer.media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert image.size == len(tar)


def test_image_id_is_the_digest_of_a_valid_config() -> None:
    image = import_image(io.BytesIO(simple_rootfs_tar()), message="my rootfs")
    raw = get_store().read_bytes(image.id)
    assert image.id == "sha256:" + hashlib.sha256(raw).hexdigest()
    config = json.loads(raw)
    assert config["rootfs"] == {"type": "layers", "diff_ids": [image.layers.get().diff_id]}
    assert config["architecture"] == host_platform().architecture and config["os"] == "linux"
    assert config["comment"] == "my rootfs"
    assert config["history"] == [{"created": config["created"], "comment": "my rootfs"}]
    assert image.comment == "my rootfs"


def test_import_without_message_says_where_it_came_from() -> None:
    image = import_image(io.BytesIO(simple_rootfs_tar()))
    assert image.comment == "Imported from -"


def test_import_tags_with_normalised_name_and_default_tag() -> None:
    image = import_image(io.BytesIO(simple_rootfs_tar()), repository="ubuntu")
    tag = Tag.objects.select_related("repository").get(image=image)
    assert (tag.repository.registry, tag.repository.path, tag.repository.name, tag.name) == (
        "docker.io", "library/ubuntu", "ubuntu", "latest")


def test_same_layer_imported_twice_is_stored_once() -> None:
    tar = simple_rootfs_tar()
    first = import_image(io.BytesIO(tar), repository="a:1")
    second = import_image(io.BytesIO(COMPRESSORS["xz"](tar)), repository="b:1")
    assert Layer.objects.count() == 1
    assert first.layers.get() == second.layers.get()


def test_progress_reports_bytes_read_and_completion() -> None:
    data = COMPRESSORS["gzip"](simple_rootfs_tar())
    progress = RecordingProgress()
    image = import_image(io.BytesIO(data), total=len(data), progress=progress)
    assert progress.items["import"] == {"current": len(data), "total": len(data), "phase": "Import complete"}
    assert progress.lines[-1] == image.id


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("./ok", b"fine"), ("/etc/passwd", b"x")], "absolute path"),
        ([("./ok", b"fine"), ("../../escape", b"x")], "'..'"),
        ([link("./hl", "/etc/shadow", hard=True)], "hard link"),
        ([link("./etc/up", "../../../../etc/shadow")], "outside the root"),
    ],
)
def test_entries_escaping_the_root_store_nothing(entries: list, message: str, store_root: Path) -> None:  # type: ignore[type-arg]
    with pytest.raises(UnsafeArchive, match=message):
        import_image(io.BytesIO(COMPRESSORS["gzip"](tar_bytes(entries))), repository="evil:1")
    assert _store_is_empty(store_root)
    assert not Repository.objects.exists()


def test_truncated_upload_stores_nothing(store_root: Path) -> None:
    data = COMPRESSORS["gzip"](simple_rootfs_tar() + tar_bytes([("big", b"x" * 300_000)]))
    with pytest.raises(CorruptArchive):
        import_image(io.BytesIO(data[: len(data) // 2]))
    assert _store_is_empty(store_root)


def test_not_a_tarball_is_a_clear_error(store_root: Path) -> None:
    with pytest.raises(CorruptArchive, match="not a valid tar archive"):
        import_image(io.BytesIO(b"this is a text file, not a tar archive\n" * 20))
    assert _store_is_empty(store_root)


def test_bad_repository_name_fails_before_reading(store_root: Path) -> None:
    class Unreadable(io.RawIOBase):
        def read(self, n: int = -1) -> bytes:
            raise AssertionError("the source must not be read")

    with pytest.raises(InvalidReference, match="must be lowercase"):
        import_image(Unreadable(), repository="Bad/Name")  # type: ignore[arg-type]
    assert _store_is_empty(store_root)


def test_import_with_changes_sets_the_config_like_docker_import_change() -> None:
    from imagestore.services.inspect import inspect_image

    image = import_image(io.BytesIO(simple_rootfs_tar()), repository="changed:1",
                         changes=['CMD ["/bin/sh"]', "ENV A=1", "WORKDIR /srv", "EXPOSE 8080"])
    config = inspect_image(image)["Config"]
    assert config["Cmd"] == ["/bin/sh"] and config["Env"] == ["A=1"] and config["WorkingDir"] == "/srv"
    assert config["ExposedPorts"] == {"8080/tcp": {}}


def test_import_with_a_bad_change_stores_nothing(store_root: Path) -> None:
    from imagestore.errors import BadRequest

    with pytest.raises(BadRequest, match="RUN is not a valid change command"):
        import_image(io.BytesIO(simple_rootfs_tar()), changes=["RUN rm -rf /"])
    assert _store_is_empty(store_root)
