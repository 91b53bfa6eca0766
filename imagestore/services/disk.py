"""``docker system df [-v]``: what the images, containers and build cache hold on disk, in the
shape of the Engine API's ``GET /system/df`` (moby api/types/system DiskUsage).

Sizes as Docker reports them: an image's ``Size`` is its layers' uncompressed bytes,
``SharedSize`` the part in layers another image uses too (the CLI shows ``Size - SharedSize``
as UNIQUE SIZE); ``LayersSize`` is what the store holds on disk for every image (each
compressed layer blob once, and the configs): the bytes a removal frees come out of it.
A container's ``SizeRw`` is what its writable layer holds, ``SizeRootFs`` that plus its image.
There is no builder, so the build cache is always empty.
"""

from __future__ import annotations

import logging
import os
import stat
from typing import Any

from django.db.models import Count, Max, Sum

from ..models import Container, Image, Layer
from .containers import container_changes
from .containers.lookup import container_dir
from .images import ImageFilters, image_sizes, image_summaries

log = logging.getLogger(__name__)
TYPES = ("container", "image", "volume", "build-cache")


def layers_size() -> int:
    """Bytes on disk of every image: each stored layer blob once, plus the configs."""
    blobs = Layer.objects.order_by().values("digest").annotate(bytes=Max("size"))
    configs = Image.objects.aggregate(total=Sum("config_size"))["total"] or 0
    return sum(row["bytes"] for row in blobs) + configs


def _tree_size(root: str) -> int:
    """Apparent bytes of the regular files under ``root``, links never followed."""
    total = 0
    for directory, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            try:
                st = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def container_size_rw(container: Container) -> int:
    """Bytes the container wrote: its overlay upper folder, or, for a copied root, the
    files ``docker diff`` calls added or changed."""
    directory = container_dir(container)
    if container.rootfs_mode == "overlay":
        return _tree_size(str(directory / "upper"))
    try:
        changes = container_changes(container)
    except Exception as exc:  # a root half-removed or unreadable: say 0, as Docker does for errors
        log.warning("size of container %s: %s", container.short_id, exc)
        return 0
    root = directory / "rootfs"
    total = 0
    for change in changes:
        if change["Kind"] in (0, 1):
            try:
                st = os.lstat(root / change["Path"].lstrip("/"))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def disk_usage(types: list[str] | None = None) -> dict[str, Any]:
    """The Engine API's DiskUsage; ``types`` limits it to some of container, image, volume and
    build-cache (all when empty), as ``?type=`` does."""
    wanted = set(types or TYPES)
    out: dict[str, Any] = {}
    if "image" in wanted:
        summaries = image_summaries(ImageFilters())
        ids = [str(s["Id"]) for s in summaries]
        sizes = image_sizes(ids)
        used = dict(Container.objects.filter(image_id__in=ids).values_list("image_id").annotate(n=Count("id")))
        for summary in summaries:
            summary["SharedSize"] = sizes[str(summary["Id"])]["shared"]
            summary["Containers"] = used.get(summary["Id"], 0)
        out["LayersSize"] = layers_size()
        out["Images"] = summaries
    if "container" in wanted:
        containers: list[dict[str, Any]] = []
        for c in Container.objects.select_related("image").order_by("-created_at"):
            args = (c.config.get("Entrypoint") or []) + (c.config.get("Cmd") or [])
            size_rw = container_size_rw(c)
            containers.append({
                "Id": c.id, "Names": [f"/{c.name}"], "Image": c.config.get("Image") or c.image_id,
                "ImageID": c.image_id, "Command": " ".join(args), "Created": int(c.created_at.timestamp()),
                "State": c.state, "Status": c.state, "SizeRw": size_rw, "SizeRootFs": size_rw + c.image.size,
                "Labels": {}, "Mounts": [], "Ports": [],
            })
        out["Containers"] = containers
    if "volume" in wanted:
        out["Volumes"] = []
    if "build-cache" in wanted:
        out["BuildCache"] = []
    return out
