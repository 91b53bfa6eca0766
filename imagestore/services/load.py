"""``docker load``: an archive (docker save, skopeo, podman) -> the store.

The archive is staged once (oci.archive_reader: every blob hashed while read) and
fully checked before anything is kept; then layer blobs are linked into the store
(no copy: staging lives on the store's filesystem), layers the store already has
are skipped, and all images and tags are registered in one transaction, so a bad
archive leaves nothing half-loaded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext

from ..blobs import BlobStore, Pins, get_store, in_use
from ..models import Job, Layer
from ..oci import mediatypes
from ..oci.archive_reader import ArchivedImage, StagedFile, read_archive_index, stage_archive
from ..oci.compression import Readable, open_decompressed
from ..oci.errors import CorruptArchive, InvalidReference
from ..oci.layer import write_gzip_layer
from ..oci.platform import host_platform
from ..oci.reference import parse_normalized
from . import audit, layerindex
from .import_ import layer_size_limit
from .jobs import JobProgress, create_job, handler
from .progress import NULL_PROGRESS, Progress
from .store import LayerRecord, register_image
from .tag import tag_image

_MEDIA_TYPES = {"none": mediatypes.OCI_LAYER_TAR, "gzip": mediatypes.OCI_LAYER_GZIP, "zstd": mediatypes.OCI_LAYER_ZSTD}


def _keep_blob(store: BlobStore, pins: Pins, staged: StagedFile) -> None:
    """Give a staged (verified) file its final name by a hard link; it stays as the pin."""
    final = store.path(staged.digest)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(staged.path, final)
    except FileExistsError:
        pass
    pins.adopt(staged.digest, staged.path)


def _store_layer(store: BlobStore, pins: Pins, staged: StagedFile, known: dict[str, Layer]) -> LayerRecord:
    layerindex.save(staged.diff_id, staged.index)  # made while the archive was staged
    existing = known.get(str(staged.diff_id))
    if existing is not None and pins.take(existing.digest):
        return LayerRecord(existing.diff_id, existing.digest, existing.media_type, existing.size,
                           existing.uncompressed_size)
    if staged.compression in _MEDIA_TYPES:
        _keep_blob(store, pins, staged)
        return LayerRecord(str(staged.diff_id), str(staged.digest), _MEDIA_TYPES[staged.compression],
                           staged.size, staged.uncompressed_size)
    # bzip2 or xz layers have no OCI media type: store them as gzip, as import does.
    with layer_size_limit() as limit, open(staged.path, "rb") as source, store.writer() as writer:
        info = write_gzip_layer(open_decompressed(source, max_output=limit), writer,
                                level=settings.IMAGESTORE_GZIP_LEVEL, max_size=limit)
        digest = writer.commit(pins=pins)
        return LayerRecord(str(info.diff_id), str(digest), mediatypes.OCI_LAYER_GZIP, writer.size, info.size)


def load_archive(stream: Readable, progress: Progress = NULL_PROGRESS) -> list[str]:
    with audit.action("load"):
        return _load_archive(stream, progress)


def _load_archive(stream: Readable, progress: Progress = NULL_PROGRESS) -> list[str]:
    """Load every image of an archive; answers Docker's ``Loaded image: ...`` lines."""
    store = get_store()
    staging = Path(tempfile.mkdtemp(prefix="load-", dir=store.tmp_dir))
    with in_use(staging):  # GC keeps it while the load runs, whatever the grace
        try:
            progress.update("archive", 0, None, "Reading archive")
            with layer_size_limit() as limit:
                # The archive's files in all, and each layer decompressed, are capped by the same setting.
                staged = stage_archive(stream, staging, max_total=limit, max_layer=limit,
                                       index_layers=settings.IMAGESTORE_INDEX_LAYERS)
                images = read_archive_index(staged, host_platform())
            if not images:
                raise CorruptArchive(gettext("the archive holds no image"))
            names = {id(image): [_tag_name(n) for n in image.names] for image in images}
            progress.update("archive", 1, 1, "Verified")
            with store.pins() as pins:
                return _register_all(store, pins, images, names, progress)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _tag_name(name: str) -> str:
    try:
        return parse_normalized(name).with_default_tag().familiar
    except InvalidReference as exc:
        raise CorruptArchive(gettext("the archive tags an image with an invalid name: %(exc)s")
                             % {"exc": exc}) from exc


def _register_all(
    store: BlobStore, pins: Pins, images: list[ArchivedImage], names: dict[int, list[str]], progress: Progress
) -> list[str]:
    diff_ids = {str(layer.diff_id) for image in images for layer in image.layers}
    known = {row.diff_id: row for row in Layer.objects.filter(diff_id__in=diff_ids)}
    planned = []
    for image in images:
        records = []
        for layer in image.layers:
            short = layer.diff_id.short
            was_known = str(layer.diff_id) in known
            records.append(_store_layer(store, pins, layer, known))
            progress.update(short, layer.size, layer.size, "Already exists" if was_known else "Loaded")
        with store.writer() as writer:
            writer.write(image.config_bytes)
            writer.commit(image.config.digest, pins=pins)
        planned.append((image, records))
    lines = []
    with transaction.atomic():
        for image, records in planned:
            stored = register_image(image.config, records, pins=pins)
            for name in names[id(image)]:
                tag_image(stored, name)
                lines.append(f"Loaded image: {name}")
            audit.record("load", object_id=stored.id, names=names[id(image)])
            if not names[id(image)]:
                lines.append(f"Loaded image ID: {stored.id}")
    for line in lines:
        progress.log(line)
    return lines


def start_load(upload_path: str, owner: Any = None) -> Job:
    return create_job(Job.Kind.LOAD, {"upload_path": str(upload_path)}, owner=owner)


def start_load_from(upload: Any, owner: Any = None) -> Job:
    """A load asked for from a form or the API: the uploaded archive is kept for the job."""
    from .uploads import keep_upload

    return start_load(str(keep_upload(upload)), owner=owner)


@handler(Job.Kind.LOAD)
def run_load_job(job: Job, progress: JobProgress) -> dict[str, Any]:
    with open(job.params["upload_path"], "rb") as source:
        lines = load_archive(source, progress)
    return {"loaded": lines}
