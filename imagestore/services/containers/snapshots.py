"""Snapshots: the unpacked read-only root of an image's layer chain, built once and shared
by every container of that image (``<IMAGESTORE_ROOT>/snapshots/<chain id>/``)."""

from __future__ import annotations

import os
import shutil
import uuid

from django.conf import settings

from ...blobs import get_store, hold_lock_file
from ...models import Container, Image, ImageLayer
from ...oci.compression import open_decompressed
from ...oci.unpack import apply_layer
from ..remove import chain_ids
from .lookup import snapshot_dir


def _chain(image: Image) -> tuple[str, list[ImageLayer]]:
    links = list(ImageLayer.objects.filter(image=image).select_related("layer").order_by("position"))
    chains = chain_ids([link.layer.diff_id for link in links])
    return (chains[-1] if chains else "sha256:" + "0" * 64), links


def ensure_snapshot(image: Image) -> str:
    """The unpacked read-only root of the image's layer chain, built once and shared.

    Found or built under the snapshot's lock, which housekeeping takes to remove one,
    and touched: a snapshot a container is being created from is young, so kept."""
    chain, links = _chain(image)
    target = snapshot_dir(chain)
    target.parent.mkdir(parents=True, exist_ok=True)
    with hold_lock_file(target.parent / f".lock-{target.name}"):
        if target.is_dir():
            os.utime(target)
            return chain
        building = target.parent / f".building-{uuid.uuid4().hex}"
        store = get_store()
        try:
            building.mkdir()
            for link in links:
                with store.open(link.layer.digest) as blob:
                    limit = settings.IMAGESTORE_MAX_LAYER_SIZE
                    apply_layer(open_decompressed(blob, max_output=limit), building, max_bytes=limit)
            os.rename(building, target)
        finally:
            if building.exists():
                shutil.rmtree(building, ignore_errors=True)
    return chain


def release_snapshot(chain: str) -> None:
    """Remove a snapshot no container needs any more (under its lock, see ensure_snapshot)."""
    if not chain:
        return
    target = snapshot_dir(chain)
    with hold_lock_file(target.parent / f".lock-{target.name}"):
        if Container.objects.filter(snapshot=chain).exists() or not target.is_dir():
            return
        doomed = target.parent / f".removing-{uuid.uuid4().hex}"
        os.rename(target, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
