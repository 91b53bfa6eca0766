"""The layer and config we store, read by real peers: umoci unpacks the same files, skopeo agrees on digests."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from imagestore.services.import_ import import_image
from imagestore.services.layout import write_oci_layout
from tests.builders import busybox_rootfs, tar_directory
from tests.conftest import require_tool

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def _tree(root: Path) -> dict[str, tuple]:  # type: ignore[type-arg]
    """Path -> (type, permission bits, content hash or link target), and hard-link groups."""
    out: dict[str, tuple] = {}  # type: ignore[type-arg]
    inodes: dict[int, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
                inodes.setdefault(st.st_ino, []).append(rel)
    out["<hardlinks>"] = tuple(sorted(tuple(sorted(group)) for group in inodes.values() if len(group) > 1))
    return out


@pytest.fixture
def busybox_image(tmp_path: Path):  # type: ignore[no-untyped-def]
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    image = import_image(io.BytesIO(tar_directory(rootfs, "gzip")), repository="busybox:static")
    return rootfs, image


def test_umoci_unpacks_our_layer_to_the_same_files(busybox_image, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    umoci = require_tool("umoci")
    rootfs, image = busybox_image
    layout = tmp_path / "layout"
    write_oci_layout([(image, "static")], layout)
    bundle = tmp_path / "bundle"
    subprocess.run([umoci, "unpack", "--image", f"{layout}:static", str(bundle)], check=True, capture_output=True)
    assert _tree(bundle / "rootfs") == _tree(rootfs)
    # The busybox we stored still runs from the unpacked root.
    result = subprocess.run([str(bundle / "rootfs" / "bin" / "busybox"), "echo", "alive"], capture_output=True,
                            text=True, check=True)
    assert result.stdout == "alive\n"


def test_skopeo_agrees_on_config_and_layer_digests(busybox_image, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    skopeo = require_tool("skopeo")
    _rootfs, image = busybox_image
    layout = tmp_path / "layout"
    write_oci_layout([(image, "static")], layout)
    config = subprocess.run([skopeo, "inspect", "--config", "--raw", f"oci:{layout}:static"], check=True,
                            capture_output=True).stdout
    assert "sha256:" + hashlib.sha256(config).hexdigest() == image.id
    info = json.loads(subprocess.run([skopeo, "inspect", f"oci:{layout}:static"], check=True,
                                     capture_output=True).stdout)
    layer = image.layers.get()
    assert info["Layers"] == [layer.digest]
    assert info["Architecture"] == image.architecture and info["Os"] == "linux"
    # skopeo copy verifies every blob against its digest on the way.
    subprocess.run([skopeo, "copy", f"oci:{layout}:static", f"dir:{tmp_path / 'copy'}"], check=True,
                   capture_output=True)
    assert (tmp_path / "copy" / layer.digest.split(":")[1]).exists()
