"""Archives we write, read by skopeo and umoci; archives skopeo writes, loaded here."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from pathlib import Path

import pytest

from imagestore.models import Image
from imagestore.services.import_ import import_image
from imagestore.services.load import load_archive
from imagestore.services.remove import remove_image
from imagestore.services.save import save_to_file
from tests.builders import busybox_rootfs, tar_directory
from tests.conftest import require_tool
from tests.integration.test_interop_oci_tools import _tree

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def busybox(tmp_path: Path):  # type: ignore[no-untyped-def]
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    image = import_image(io.BytesIO(tar_directory(rootfs, "gzip")), repository="busybox:static")
    return rootfs, image


def _run(*args: str) -> bytes:
    return subprocess.run(list(args), check=True, capture_output=True).stdout


def test_skopeo_reads_our_archive_and_umoci_unpacks_its_copy(busybox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    skopeo, umoci = require_tool("skopeo"), require_tool("umoci")
    rootfs, image = busybox
    archive = tmp_path / "ours.tar"
    save_to_file(["busybox:static"], archive)
    info = json.loads(_run(skopeo, "inspect", f"docker-archive:{archive}"))
    layer = image.layers.get()
    assert info["Layers"] == [layer.diff_id]  # docker-archive names layers by their diff_ids
    config = _run(skopeo, "inspect", "--config", "--raw", f"docker-archive:{archive}")
    assert "sha256:" + hashlib.sha256(config).hexdigest() == image.id
    # The OCI layout inside the same archive, read as such.
    _run(skopeo, "copy", f"docker-archive:{archive}", f"oci:{tmp_path / 'copy'}:static")
    _run(umoci, "unpack", "--image", f"{tmp_path / 'copy'}:static", str(tmp_path / "bundle"))
    assert _tree(tmp_path / "bundle" / "rootfs") == _tree(rootfs)
    oci_dir = tmp_path / "inner"
    oci_dir.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(oci_dir)], check=True)
    info = json.loads(_run(skopeo, "inspect", f"oci:{oci_dir}"))
    assert info["Layers"] == [layer.digest]


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_archives_made_by_skopeo_load_with_skopeos_config_digest_as_id(busybox, tmp_path: Path, transport: str) -> None:  # type: ignore[no-untyped-def]
    skopeo = require_tool("skopeo")
    _rootfs, image = busybox
    layout = tmp_path / "layout"
    from imagestore.services.layout import write_oci_layout

    write_oci_layout([(image, "static")], layout)
    archive = tmp_path / f"skopeo-{transport}.tar"
    destination = f"{transport}:{archive}:127.0.0.1:5000/peers/busybox:skopeo"
    _run(skopeo, "copy", f"oci:{layout}:static", destination)
    config = _run(skopeo, "inspect", "--config", "--raw", f"{transport}:{archive}")
    expected_id = "sha256:" + hashlib.sha256(config).hexdigest()
    remove_image(image.id, force=True)
    with open(archive, "rb") as f:
        lines = load_archive(f)
    assert lines == ["Loaded image: 127.0.0.1:5000/peers/busybox:skopeo"]
    loaded = Image.objects.get()
    assert loaded.id == expected_id
    assert [t.name for t in loaded.tags.all()] == ["skopeo"]
