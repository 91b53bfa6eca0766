"""A container's writable root: an overlay over its snapshot where the kernel allows it,
otherwise a copy (``CONTAINER_ROOTFS``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext

from ...blobs import get_store, in_use
from ...errors import ServiceError
from ...models import Container
from .lookup import _root, container_dir, rootfs, snapshot_dir

_overlay_probe: dict[str, bool] = {}


def _overlay_supported() -> bool:
    """Whether this kernel and these privileges allow an overlay mount here (probed once)."""
    key = str(_root())
    if key not in _overlay_probe:
        probe = Path(tempfile.mkdtemp(prefix="overlay-probe-", dir=get_store().tmp_dir))
        with in_use(probe):  # GC keeps it while probing, whatever the grace
            try:
                for d in ("lower", "upper", "work", "merged"):
                    (probe / d).mkdir()
                ok = _mount_overlay(probe / "lower", probe / "upper", probe / "work", probe / "merged")
                if ok:
                    subprocess.run(["umount", str(probe / "merged")], capture_output=True)
                _overlay_probe[key] = ok
            finally:
                shutil.rmtree(probe, ignore_errors=True)
    return _overlay_probe[key]


def _mount_overlay(lower: Path, upper: Path, work: Path, merged: Path) -> bool:
    result = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}",
         str(merged)], capture_output=True,
    )
    return result.returncode == 0


def _rootfs_mode() -> str:
    mode = settings.CONTAINER_ROOTFS
    if mode == "auto":
        return "overlay" if _overlay_supported() else "copy"
    return mode


def ensure_rootfs(container: Container) -> Path:
    """The container's root, mounted again if it is an overlay the host forgot (a reboot)."""
    root = rootfs(container)
    if container.rootfs_mode == "overlay" and not os.path.ismount(root):
        directory = container_dir(container)
        if not _mount_overlay(snapshot_dir(container.snapshot), directory / "upper", directory / "work", root):
            raise ServiceError(gettext("cannot mount the root filesystem of container %(container_short_id)s")
                               % {"container_short_id": container.short_id})
    return root


def _release_rootfs(container: Container) -> None:
    root = rootfs(container)
    if container.rootfs_mode == "overlay" and os.path.ismount(root):
        subprocess.run(["umount", "-l", str(root)], capture_output=True)
