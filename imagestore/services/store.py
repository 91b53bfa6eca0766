"""Registering images in the store: the one place image and layer rows are created.

Import, pull, load and commit all end here, so an image is always written the
same way: blobs first (verified), then every row in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext

from ..blobs import Pins, get_store
from ..models import Image, ImageLayer, Layer
from ..oci.config import ImageConfig
from ..oci.digest import Digest
from ..oci.errors import OCIError


class InconsistentImage(OCIError, ValueError):
    """The layers given do not match the config's rootfs.diff_ids."""


@dataclass(frozen=True)
class LayerRecord:
    diff_id: str
    digest: str
    media_type: str
    size: int
    uncompressed_size: int


def register_image(
    config: ImageConfig, layers: list[LayerRecord], *, parent: Image | None = None, pins: Pins | None = None
) -> Image:
    """Create (or find) the image for ``config`` whose blobs are already stored.

    ``pins`` holds blobs the caller wrote or found (see BlobStore.pin); the rest are
    pinned here, before the transaction: a removal running now may delete a name,
    never the bytes we are about to reference.
    """
    if [str(d) for d in config.diff_ids] != [layer.diff_id for layer in layers]:
        raise InconsistentImage(gettext("the image's layers do not match the diff_ids of its config"))
    if pins is None:
        with get_store().pins() as own:
            return register_image(config, layers, parent=parent, pins=own)
    pins.take(config.digest)
    for layer in layers:
        pins.take(layer.digest)
    image = _register(config, layers, parent, pins)
    if image.packages_scanned_at is None and settings.IMAGESTORE_INDEX_LAYERS:
        from .packages import scan_quietly

        scan_quietly(image)  # from the layer indexes just written: no layer is read again
    return image


def _register(config: ImageConfig, layers: list[LayerRecord], parent: Image | None, pins: Pins) -> Image:
    store = get_store()
    with transaction.atomic():
        # Insert the layers no row holds yet (a concurrent registration may insert the
        # same ones: ON CONFLICT DO NOTHING), then lock every row this image needs.
        Layer.objects.bulk_create(
            [Layer(diff_id=layer.diff_id, digest=layer.digest, media_type=layer.media_type, size=layer.size,
                   uncompressed_size=layer.uncompressed_size) for layer in layers],
            ignore_conflicts=True,
        )
        existing = {
            row.diff_id: row
            for row in Layer.objects.select_for_update().filter(diff_id__in=[layer.diff_id for layer in layers])
        }
        # Checked under the layer locks: a removal that deletes a blob holds the same
        # locks, so either it ran first (and we put the pinned bytes back) or it
        # waits for us and then sees the layer in use.
        if not pins.ensure(config.digest):
            raise InconsistentImage(gettext("config blob %(digest)s is not in the store") % {"digest": config.digest})
        rows = []
        for layer in layers:
            row = existing.get(layer.diff_id)
            if row is None:  # removed between our insert and our lock: insert it again
                row, _ = Layer.objects.get_or_create(
                    diff_id=layer.diff_id,
                    defaults={"digest": layer.digest, "media_type": layer.media_type, "size": layer.size,
                              "uncompressed_size": layer.uncompressed_size},
                )
                existing[layer.diff_id] = row
            if not (pins.ensure(row.digest) or (row.digest != layer.digest and pins.ensure(layer.digest))):
                raise InconsistentImage(gettext("layer blob %(digest)s is not in the store") % {"digest": row.digest})
            if not store.exists(row.digest):
                # The row's blob is lost but ours is here: point the row at ours.
                Layer.objects.filter(pk=row.pk).update(digest=layer.digest, media_type=layer.media_type,
                                                       size=layer.size)
                row.digest, row.media_type, row.size = layer.digest, layer.media_type, layer.size
            rows.append(row)
        image, created = Image.objects.get_or_create(
            id=str(config.digest),
            defaults={
                "config_size": config.size,
                "created": config.created,
                "author": config.author[:255],
                "comment": config.comment,
                "architecture": config.architecture[:32],
                "os": config.os[:32],
                "variant": config.variant[:32],
                "docker_version": config.docker_version[:64],
                "parent": parent,
                "size": sum(row.uncompressed_size for row in rows),
                "labels": config.labels,
            },
        )
        if created:
            ImageLayer.objects.bulk_create(
                ImageLayer(image=image, layer=row, position=i) for i, row in enumerate(rows)
            )
        # A removal deletes names after its own commit, checking rows under names_lock;
        # it may have checked just before these rows were visible. Once they are, make
        # sure the names are there (the pinned bytes are) under the same lock.
        needed: list[Digest | str] = [config.digest, *(row.digest for row in rows)]
        transaction.on_commit(lambda: pins.ensure_names(needed), robust=True)
    return image
