"""Archive documents read with bounds: manifest.json, index.json, OCI manifests and configs
at most 4 MiB (the distribution registry's limit) and 64 levels deep, at most 127 layers
(Docker's limit). Before: OCI manifests and configs were read whole, manifest.json up to
16 MiB, a deeply nested config raised RecursionError, and any number of layers loaded."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from imagestore.models import Image, Layer, Tag
from imagestore.oci.errors import LimitExceeded
from imagestore.services.load import load_archive
from tests.builders import COMPRESSORS, simple_rootfs_tar, tar_bytes

pytestmark = pytest.mark.django_db
FIVE_MIB = 5 << 20


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _image(layer_count: int = 1, config_extra: dict[str, Any] | None = None) -> tuple[bytes, list[tuple[bytes, str]]]:
    """A config and its gzip layers (bytes, diff_id), each layer a small distinct root."""
    layers = []
    for n in range(layer_count):
        tar = simple_rootfs_tar(f"layer {n}")
        layers.append((COMPRESSORS["gzip"](tar), _sha(tar)))
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]}, **(config_extra or {})}
    return json.dumps(config).encode(), layers


def _docker_archive(config: bytes, layers: list[tuple[bytes, str]], manifest_extra: dict[str, Any] | None = None,
                    ) -> bytes:
    entries = [(f"layer{n}.tar.gz", data) for n, (data, _) in enumerate(layers)]
    manifest = [{"Config": "config.json", "RepoTags": ["bounded:1"],
                 "Layers": [f"layer{n}.tar.gz" for n in range(len(layers))], **(manifest_extra or {})}]
    return tar_bytes([*entries, ("config.json", config), ("manifest.json", json.dumps(manifest).encode())])


def _oci_archive(config: bytes, layers: list[tuple[bytes, str]], annotations: dict[str, str] | None = None) -> bytes:
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _sha(data),
                    "size": len(data)} for data, _ in layers],
        "annotations": annotations or {},
    }).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _sha(manifest), "size": len(manifest),
        "annotations": {"io.containerd.image.name": "docker.io/library/bounded:1"}}]}).encode()
    blobs = [(f"blobs/sha256/{_sha(data)[7:]}", data) for data in {config, manifest, *(d for d, _ in layers)}]
    return tar_bytes([("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), *blobs, ("index.json", index)])


def _nothing_loaded(store_root: Path) -> None:
    assert not Image.objects.exists() and not Layer.objects.exists() and not Tag.objects.exists()
    assert list(store_root.glob("sha256/*/*")) == [] and list((store_root / "tmp").glob("*")) == []


def test_the_archives_load_when_within_bounds(store_root: Path) -> None:
    """The same builders, within the bounds, load: the refusals below are the bounds'."""
    config, layers = _image(2)
    assert load_archive(io.BytesIO(_oci_archive(config, layers, {"note": "x" * 1000}))) == ["Loaded image: bounded:1"]
    assert load_archive(io.BytesIO(_docker_archive(config, layers))) == ["Loaded image: bounded:1"]


def test_an_oci_archive_with_a_5_mib_manifest_is_refused(store_root: Path) -> None:
    config, layers = _image()
    archive = _oci_archive(config, layers, {"padding": "x" * FIVE_MIB})
    with pytest.raises(LimitExceeded, match="manifest sha256:[0-9a-f]+ is larger than the limit of 4 MiB"):
        load_archive(io.BytesIO(archive))
    _nothing_loaded(store_root)


def test_a_5_mib_manifest_json_is_refused(store_root: Path) -> None:
    config, layers = _image()
    with pytest.raises(LimitExceeded, match="manifest.json is larger than the limit of 4 MiB"):
        load_archive(io.BytesIO(_docker_archive(config, layers, {"Padding": "x" * FIVE_MIB})))
    _nothing_loaded(store_root)


@pytest.mark.parametrize("layout", ["docker", "oci"])
def test_a_5_mib_config_is_refused(store_root: Path, layout: str) -> None:
    config, layers = _image(config_extra={"comment": "x" * FIVE_MIB})
    archive = _docker_archive(config, layers) if layout == "docker" else _oci_archive(config, layers)
    with pytest.raises(LimitExceeded, match="config .* is larger than the limit of 4 MiB"):
        load_archive(io.BytesIO(archive))
    _nothing_loaded(store_root)


@pytest.mark.parametrize("layout", ["docker", "oci"])
def test_a_deeply_nested_config_is_refused_not_a_recursion_error(store_root: Path, layout: str) -> None:
    config, layers = _image()
    deep = config[:-1] + b', "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    archive = _docker_archive(deep, layers) if layout == "docker" else _oci_archive(deep, layers)
    with pytest.raises(LimitExceeded, match="nests deeper than the limit of 64 levels"):
        load_archive(io.BytesIO(archive))
    _nothing_loaded(store_root)


def test_a_deeply_nested_manifest_json_is_refused(store_root: Path) -> None:
    config, layers = _image()
    archive = tar_bytes([("layer0.tar.gz", layers[0][0]), ("config.json", config),
                         ("manifest.json", b"[" * 100_000 + b"]" * 100_000)])
    with pytest.raises(LimitExceeded, match="manifest.json nests deeper"):
        load_archive(io.BytesIO(archive))
    _nothing_loaded(store_root)


@pytest.mark.parametrize("layout", ["docker", "oci"])
def test_more_than_127_layers_are_refused(store_root: Path, layout: str) -> None:
    config, layers = _image(128)
    archive = _docker_archive(config, layers) if layout == "docker" else _oci_archive(config, layers)
    with pytest.raises(LimitExceeded, match="128 layers, more than the limit of 127"):
        load_archive(io.BytesIO(archive))
    _nothing_loaded(store_root)
