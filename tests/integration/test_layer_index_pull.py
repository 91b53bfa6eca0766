"""A pull indexes each layer from the bytes it verifies: no second read of the blob."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagestore.blobs import BlobStore
from imagestore.services import layerindex
from imagestore.services.pull import pull_image
from tests.integration.registry import build_busybox_layout, skopeo_copy

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_pull_indexes_every_layer_in_its_one_pass(tmp_path: Path, registry, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    layout = build_busybox_layout(tmp_path / "umoci")
    skopeo_copy(f"oci:{layout}:busybox", f"docker://{registry.host}/tools/busybox:1")

    def refuse(self: BlobStore, digest: object) -> None:
        raise AssertionError(f"blob {digest} was read again")

    monkeypatch.setattr(BlobStore, "open", refuse)
    image = pull_image(f"{registry.host}/tools/busybox:1").image
    entries = [e for layer in image.layers.all() for e in layerindex.load(layer.diff_id).entries]
    by_path = {e.path: e for e in entries}
    assert by_path["bin/busybox"].type == "file" and by_path["bin/busybox"].size > 100_000
    assert by_path["bin/sh"].type in ("symlink", "hardlink")
