"""``docker save``: stored images -> one archive (docker-archive and OCI layout together).

Source to sink: the plan is built from rows, then blobs stream from the store into
the tar; an HTTP download starts sending at once, a job writes the same stream
to the data folder with progress per layer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext

from ..blobs import get_store
from ..errors import BadRequest, ImageNotFound
from ..models import Image, ImageLayer, Job, Tag
from ..oci import mediatypes
from ..oci.archive import ArchiveImage, ArchivePlan, plan_archive, stream_archive
from ..oci.digest import Digest
from ..oci.errors import InvalidReference
from ..oci.manifest import Descriptor
from ..oci.reference import Reference, parse_normalized
from . import audit
from .images import resolve_image_and_reference
from .jobs import JobProgress, create_job, handler
from .progress import NULL_PROGRESS, Progress


def _select(names: list[str]) -> dict[str, tuple[Image, list[Reference]]]:
    """Images and the tags to record for them, as ``docker save NAME...`` chooses:
    a tag saves that tag, a bare repository name all its tags, an id the image untagged."""
    chosen: dict[str, tuple[Image, list[Reference]]] = {}

    def add(image: Image, ref: Reference | None) -> None:
        entry = chosen.setdefault(image.pk, (image, []))
        if ref is not None and ref.tag and ref not in entry[1]:
            entry[1].append(Reference(ref.domain, ref.path, ref.tag))

    for name in names:
        bare = None
        try:
            bare = parse_normalized(name)
        except InvalidReference:
            pass
        if bare is not None and bare.tag is None and bare.digest is None:
            tags = list(
                Tag.objects.filter(repository__registry=bare.domain, repository__path=bare.path)
                .select_related("image", "repository")
                .order_by("name")
            )
            if tags:
                for tag in tags:
                    add(tag.image, Reference(bare.domain, bare.path, tag.name))
                continue
        image, ref = resolve_image_and_reference(name)
        add(image, ref if ref is not None and ref.digest is None else None)
    return chosen


def plan_save(names: list[str]) -> ArchivePlan:
    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        raise BadRequest(gettext("name at least one image to save"))
    chosen = _select(names)
    links = ImageLayer.objects.filter(image_id__in=list(chosen)).select_related("layer").order_by("image", "position")
    layers: dict[str, list[Descriptor]] = {}
    for link in links:
        layers.setdefault(link.image_id, []).append(
            Descriptor(link.layer.media_type, Digest.parse(link.layer.digest), link.layer.size)
        )
    images = []
    for image_id, (image, refs) in chosen.items():
        platform = {"architecture": image.architecture, "os": image.os}
        if image.variant:
            platform["variant"] = image.variant
        images.append(
            ArchiveImage(
                config=Descriptor(mediatypes.OCI_CONFIG, Digest.parse(image.id), image.config_size),
                layers=layers.get(image_id, []),
                refs=refs,
                platform=platform,
            )
        )
    return plan_archive(images)


def archive_stream(plan: ArchivePlan, progress: Progress = NULL_PROGRESS) -> Iterator[bytes]:
    store = get_store()
    missing = [d for d in plan.blobs if not store.exists(d)]
    if missing:
        raise ImageNotFound(gettext("blob %(missing)s (the store lost it; pull or load the image again)")
                            % {"missing": missing[0]})

    def on_blob(digest: str, done: int, total: int) -> None:
        progress.update(Digest.parse(digest).short, done, total, "Saving" if done < total else "Saved")

    return stream_archive(plan, store.chunks, on_blob)


def exports_dir() -> Path:
    path = Path(settings.IMAGESTORE_ROOT) / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_to_file(names: list[str], target: Path, progress: Progress = NULL_PROGRESS) -> int:
    """Write the archive to ``target`` (atomically: a temporary name, then a rename)."""
    plan = plan_save(names)
    for digest, size in plan.blobs.items():
        progress.update(Digest.parse(digest).short, 0, size, "Waiting")
    partial = target.with_name(target.name + ".partial")
    written = 0
    try:
        with open(partial, "wb") as out:
            for chunk in archive_stream(plan, progress):
                out.write(chunk)
                written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return written


def record_save(names: list[str]) -> None:
    """``save`` in the audit trail, one event per image (a save changes nothing else)."""
    audit.record_many([("save", {"object_id": image.id, "names": [r.familiar for r in refs]})
                       for image, refs in _select(names).values()])


def start_save(names: list[str], owner: Any = None) -> Job:
    plan_save(names)  # a missing image or bad name is said now, not by the job
    return create_job(Job.Kind.SAVE, {"images": list(names)}, owner=owner)


@handler(Job.Kind.SAVE)
def run_save_job(job: Job, progress: JobProgress) -> dict[str, Any]:
    target = exports_dir() / f"{job.id}.tar"
    size = save_to_file(job.params["images"], target, progress)
    record_save(job.params["images"])
    progress.log(f"Saved {len(job.params['images'])} name(s), {size} bytes")
    return {"file": target.name, "size": size, "download": f"/api/v1/jobs/{job.id}/download/"}


def export_path(job: Job) -> Path | None:
    """The archive a finished save job wrote, if it is still there."""
    if job.kind != Job.Kind.SAVE or job.state != Job.State.SUCCEEDED:
        return None
    path = exports_dir() / f"{job.id}.tar"
    return path if path.is_file() else None
