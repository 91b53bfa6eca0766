"""A compression bomb served by the real reference registry: the pull fails naming the
limit, registers nothing and keeps no blob. Before, the pull verified the layer by
expanding it whole (no cap on bzip2, xz or zstd; none on what a pull expands at all)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import requests

from imagestore.models import Image, Layer
from imagestore.oci.errors import SizeLimitExceeded
from imagestore.services.pull import pull_image
from tests.integration.registry import Registry
from tests.security.bombs import MiB, _bomb

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
MEDIA_TYPES = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
               "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}


def _push_blob(registry: Registry, repository: str, data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = requests.post(f"{registry.url}/v2/{repository}/blobs/uploads/", timeout=10)
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    location = location if location.startswith("http") else registry.url + location
    put = requests.put(location, params={"digest": digest}, data=data, timeout=30,
                       headers={"Content-Type": "application/octet-stream"})
    assert put.status_code == 201, put.text
    return {"digest": digest, "size": len(data)}


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_a_pulled_bomb_fails_naming_the_limit(registry: Registry, store_root: Path, settings, kind: str) -> None:  # type: ignore[no-untyped-def]
    settings.IMAGESTORE_MAX_LAYER_SIZE = 8 * MiB
    layer, diff_id = _bomb(kind, 64 * MiB)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_push_blob(registry, "bomb", config)},
        "layers": [{"mediaType": MEDIA_TYPES[kind], **_push_blob(registry, "bomb", layer)}],
    }
    put = requests.put(f"{registry.url}/v2/bomb/manifests/1", data=json.dumps(manifest), timeout=10,
                       headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert put.status_code == 201, put.text
    with pytest.raises(SizeLimitExceeded, match=r"more than the limit of 8 MiB \(IMAGESTORE_MAX_LAYER_SIZE\)"):
        pull_image(f"{registry.host}/bomb:1")
    assert not Image.objects.exists() and not Layer.objects.exists()
    layer_hex = manifest["layers"][0]["digest"].split(":")[1]  # type: ignore[index]
    # The layer's blob went with the failure (the small config blob, pulled first, is GC's).
    assert [p.name for p in store_root.glob("sha256/*/*")] == [hashlib.sha256(config).hexdigest()]
    assert not (store_root / "sha256" / layer_hex[:2] / layer_hex).exists()
