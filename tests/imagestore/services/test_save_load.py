"""docker save / docker load: round trips, Docker 25's layout, and bad archives that load nothing."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from imagestore.blobs import get_store
from imagestore.errors import ImageNotFound
from imagestore.models import Image, Layer, Repository, Tag
from imagestore.oci.errors import CorruptArchive, DigestMismatch, UnsafeArchive
from imagestore.services.load import load_archive
from imagestore.services.progress import RecordingProgress
from imagestore.services.remove import remove_image
from imagestore.services.save import archive_stream, plan_save, save_to_file
from imagestore.services.tag import tag_image
from tests.builders import tar_bytes

pytestmark = pytest.mark.django_db


def _save(names: list[str]) -> bytes:
    return b"".join(archive_stream(plan_save(names)))


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"") for m in tar}  # type: ignore[union-attr]


def _nothing_loaded(store_root: Path) -> bool:
    blobs = [p for p in store_root.glob("sha256/*/*")]
    leftovers = [p for p in (store_root / "tmp").iterdir()]
    return not Image.objects.exists() and not Layer.objects.exists() and not Tag.objects.exists() \
        and blobs == [] and leftovers == []


def test_archive_has_both_docker_and_oci_layouts(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    layer = image.layers.get()
    files = _members(_save(["busybox:latest"]))
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    manifest = json.loads(files["manifest.json"])
    assert manifest == [{"Config": f"blobs/sha256/{image.hex}", "RepoTags": ["busybox:latest"],
                         "Layers": [f"blobs/sha256/{layer.digest.split(':')[1]}"]}]
    assert json.loads(files["repositories"]) == {"busybox": {"latest": layer.digest.split(":")[1]}}
    index = json.loads(files["index.json"])
    [entry] = index["manifests"]
    assert entry["annotations"] == {"io.containerd.image.name": "docker.io/library/busybox:latest",
                                    "org.opencontainers.image.ref.name": "latest"}
    oci_manifest = json.loads(files["blobs/sha256/" + entry["digest"].split(":")[1]])
    assert oci_manifest["config"]["digest"] == image.id
    assert [x["digest"] for x in oci_manifest["layers"]] == [layer.digest]
    for name, data in files.items():  # every blob is what its name says
        if name.startswith("blobs/sha256/") and data:
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]


def test_shared_layers_are_stored_once_and_all_tags_recorded(make_image) -> None:  # type: ignore[no-untyped-def]
    a = make_image("a:1")
    b = make_image("b:1")  # same root filesystem, another image
    tag_image(a, "a:2")
    files = _members(_save(["a", "b:1"]))
    layer_blob = "blobs/sha256/" + a.layers.get().digest.split(":")[1]
    assert list(files).count(layer_blob) == 1
    manifest = {tuple(item["RepoTags"]): item for item in json.loads(files["manifest.json"])}
    assert set(manifest) == {("a:1", "a:2"), ("b:1",)}
    assert manifest[("b:1",)]["Config"] == f"blobs/sha256/{b.hex}"


def test_save_by_id_records_no_tag(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    files = _members(_save([image.short_id]))
    assert json.loads(files["manifest.json"])[0]["RepoTags"] is None
    assert "annotations" not in json.loads(files["index.json"])["manifests"][0]


def test_stream_length_is_known_before_it_starts(make_image) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    plan = plan_save(["busybox"])
    assert len(b"".join(archive_stream(plan))) == plan.size()


def test_save_of_missing_image_is_not_found(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ImageNotFound):
        plan_save(["nothere:1"])


@pytest.mark.django_db(transaction=True)  # removal deletes blobs once it commits
def test_round_trip_gives_same_id_tags_and_layer_digests(make_image, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    tag_image(image, "127.0.0.1:5000/tools/busybox:1")
    layer = image.layers.get()
    target = tmp_path / "out.tar"
    save_to_file(["busybox:latest", "127.0.0.1:5000/tools/busybox:1"], target)
    remove_image(image.id, force=True)
    assert not Image.objects.exists() and not get_store().exists(layer.digest)
    with open(target, "rb") as f:
        lines = load_archive(f)
    assert sorted(lines) == ["Loaded image: 127.0.0.1:5000/tools/busybox:1", "Loaded image: busybox:latest"]
    loaded = Image.objects.get()
    assert loaded.id == image.id
    assert sorted(str(t) for t in loaded.tags.select_related("repository")) == [
        "127.0.0.1:5000/tools/busybox:1", "busybox:latest"]
    assert [(x.diff_id, x.digest) for x in loaded.layers.all()] == [(layer.diff_id, layer.digest)]
    assert get_store().exists(layer.digest)


def test_untagged_image_loads_as_image_id(make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image(None)
    data = _save([image.id])
    remove_image(image.id)
    assert load_archive(io.BytesIO(data)) == [f"Loaded image ID: {image.id}"]


def test_layers_the_store_has_are_not_written_again(make_image) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    data = _save(["busybox:latest"])
    remove_image("busybox:latest")
    other = make_image("keep:1")  # same layer, kept in the store
    inode = get_store().path(other.layers.get().digest).stat().st_ino
    progress = RecordingProgress()
    load_archive(io.BytesIO(data), progress)
    assert get_store().path(other.layers.get().digest).stat().st_ino == inode
    assert progress.items[Layer.objects.get().diff_id.split(":")[1][:12]]["phase"] == "Already exists"


def _legacy_archive(config: bytes, layer: bytes, tags: list[str] | None) -> bytes:
    """A docker-archive as Docker before 25 wrote it: <id>.json and <dir>/layer.tar."""
    config_hex = hashlib.sha256(config).hexdigest()
    return tar_bytes([
        (f"{config_hex}.json", config),
        ("abc123/layer.tar", layer),
        ("abc123/VERSION", b"1.0"),
        ("manifest.json", json.dumps([{"Config": f"{config_hex}.json", "RepoTags": tags,
                                       "Layers": ["abc123/layer.tar"]}]).encode()),
    ])


def test_old_docker_archive_with_uncompressed_layer_tar_loads(db) -> None:  # type: ignore[no-untyped-def]
    layer = tar_bytes([("etc/hostname", b"legacy\n")])
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    assert load_archive(io.BytesIO(_legacy_archive(config, layer, ["legacy:1"]))) == ["Loaded image: legacy:1"]
    image = Image.objects.get()
    assert image.id == "sha256:" + hashlib.sha256(config).hexdigest()
    stored = image.layers.get()
    assert stored.media_type == "application/vnd.oci.image.layer.v1.tar"
    assert stored.digest == diff_id and get_store().read_bytes(stored.digest) == layer


# --- bad archives: a clear error, nothing half-loaded -----------------------------------

@pytest.mark.django_db(transaction=True)  # removal deletes blobs once it commits
def test_truncated_archive_loads_nothing(make_image, store_root: Path) -> None:  # type: ignore[no-untyped-def]
    data = _save([make_image("busybox:latest").id])
    remove_image("busybox:latest")
    with pytest.raises(CorruptArchive):
        load_archive(io.BytesIO(data[: len(data) // 2]))
    assert _nothing_loaded(store_root)


@pytest.mark.django_db(transaction=True)  # removal deletes blobs once it commits
def test_blob_with_wrong_digest_loads_nothing(make_image, store_root: Path) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    name = "blobs/sha256/" + image.layers.get().digest.split(":")[1]
    files = _members(_save(["busybox:latest"]))
    remove_image("busybox:latest")
    files[name] = files[name][:-1] + bytes([files[name][-1] ^ 1])
    with pytest.raises(DigestMismatch, match="blob blobs/sha256/"):
        load_archive(io.BytesIO(tar_bytes(list(files.items()))))
    assert _nothing_loaded(store_root)


@pytest.mark.django_db(transaction=True)  # removal deletes blobs once it commits
def test_manifest_pointing_to_a_missing_blob_loads_nothing(make_image, store_root: Path) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    name = "blobs/sha256/" + image.layers.get().digest.split(":")[1]
    files = _members(_save(["busybox:latest"]))
    remove_image("busybox:latest")
    del files[name]
    with pytest.raises(CorruptArchive, match="does not contain"):
        load_archive(io.BytesIO(tar_bytes([(k, v) for k, v in files.items() if v or "." in k])))
    assert _nothing_loaded(store_root)


def test_layer_not_matching_its_config_loads_nothing(db, store_root: Path) -> None:  # type: ignore[no-untyped-def]
    layer = tar_bytes([("etc/hostname", b"legacy\n")])
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
    with pytest.raises(DigestMismatch, match="layer 0"):
        load_archive(io.BytesIO(_legacy_archive(config, layer, ["x:1"])))
    assert _nothing_loaded(store_root)


@pytest.mark.parametrize("name", ["../../etc/evil", "/abs/evil"])
def test_path_traversal_loads_nothing(db, store_root: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnsafeArchive):
        load_archive(io.BytesIO(tar_bytes([(name, b"x"), ("manifest.json", b"[]")])))
    assert _nothing_loaded(store_root)


def test_10gb_claimed_in_a_tiny_file_is_an_error(db, store_root: Path, settings) -> None:  # type: ignore[no-untyped-def]
    info = tarfile.TarInfo("blobs/sha256/" + "a" * 64)
    info.size = 10 * 1000**3
    data = info.tobuf(format=tarfile.GNU_FORMAT) + b"x" * 4096
    with pytest.raises(CorruptArchive, match="truncated|unexpected end"):
        load_archive(io.BytesIO(data))
    settings.IMAGESTORE_MAX_LAYER_SIZE = 1 << 30
    with pytest.raises(UnsafeArchive, match="more than the limit"):
        load_archive(io.BytesIO(data))
    assert _nothing_loaded(store_root)


def test_not_an_image_archive(db, store_root: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CorruptArchive, match="neither manifest.json nor index.json"):
        load_archive(io.BytesIO(tar_bytes([("hello.txt", b"hi")])))
    with pytest.raises(CorruptArchive, match="not a valid image archive"):
        load_archive(io.BytesIO(b"plain text, not a tar" * 50))
    assert _nothing_loaded(store_root)
    assert not Repository.objects.exists()
