"""``docker push``: store -> registry.

For each blob: ask the registry (HEAD); mount it from another repository of the same
registry we know holds it; otherwise upload it (one PUT, or PATCH chunks for big
blobs). Then the manifest, built from the stored rows, so its digest is the one
the registry reports back.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext

from ..blobs import get_store
from ..errors import BadRequest, ImageNotFound
from ..models import Image, ImageLayer, Job, RepoDigest, Repository, Tag
from ..oci import mediatypes
from ..oci.digest import Digest
from ..oci.reference import Reference, parse_normalized
from ..oci.registry import RegistryClient, RegistryError, retry
from . import audit
from .jobs import JobProgress, create_job, handler
from .layout import image_manifest
from .progress import NULL_PROGRESS, Progress
from .registries import check_reachable, client_for
from .repositories import get_or_create_repository


def _targets(name: str, all_tags: bool) -> list[tuple[Reference, Image]]:
    ref = parse_normalized(name)
    if ref.digest is not None:
        raise BadRequest(gettext("push a tag, not a digest reference"))
    tags = Tag.objects.filter(repository__registry=ref.domain, repository__path=ref.path).select_related("image")
    if ref.tag is None and all_tags:
        rows = list(tags.order_by("name"))
        if not rows:
            raise ImageNotFound(ref.familiar_name)
    else:
        tag = ref.tag or "latest"
        rows = list(tags.filter(name=tag))
        if not rows:
            raise ImageNotFound(Reference(ref.domain, ref.path, tag).familiar)
    return [(Reference(ref.domain, ref.path, row.name), row.image) for row in rows]


def _mount_source(ref: Reference, digest: str) -> str | None:
    """Another repository of the same registry that we know holds this blob."""
    repository = (
        Repository.objects.filter(registry=ref.domain)
        .exclude(path=ref.path)
        .filter(Q(tags__image__image_layers__layer__digest=digest)
                | Q(repo_digests__image__image_layers__layer__digest=digest)
                | Q(tags__image_id=digest) | Q(repo_digests__image_id=digest))  # a config blob
        .first()
    )
    return repository.path if repository else None


def _push_blob(client: RegistryClient, ref: Reference, digest: str, size: int, progress: Progress) -> None:
    item = Digest.parse(digest).short
    progress.update(item, 0, size, "Preparing")
    if retry(lambda: client.blob_exists(ref.path, digest, scope=f"repository:{ref.path}:pull,push")):
        progress.update(item, size, size, "Layer already exists")
        return
    location = None
    source_repo = _mount_source(ref, digest)
    if source_repo is not None:
        location = client.mount_blob(ref.path, digest, source_repo)
        if location is None:
            progress.update(item, size, size, f"Mounted from {source_repo}")
            return
    store = get_store()
    chunk = settings.PUSH_CHUNK_SIZE

    def upload() -> None:
        with store.open(digest) as source:
            client.upload_blob(
                ref.path, digest, source, size, location=location, chunk_size=chunk if size > chunk else None,
                on_progress=lambda done, total: progress.update(item, done, total, "Pushing"),
            )

    try:
        upload()
    except RegistryError as exc:
        if not exc.temporary:
            raise
        location = None  # a broken upload session is not reused: start a new one
        retry(upload)
    progress.update(item, size, size, "Pushed")


def push_image(name: str, *, all_tags: bool = False, owner: Any = None,
               progress: Progress = NULL_PROGRESS) -> list[dict[str, Any]]:
    results = []
    for ref, image in _targets(name, all_tags):
        progress.log(f"The push refers to repository [{ref.name}]")
        client = client_for(ref.domain, owner)
        links = list(ImageLayer.objects.filter(image=image).select_related("layer").order_by("position"))
        for link in links:
            _push_blob(client, ref, link.layer.digest, link.layer.size, progress)
        _push_blob(client, ref, image.id, image.config_size, progress)
        manifest = image_manifest(image, links)
        digest = retry(lambda: client.put_manifest(ref.path, str(ref.tag), manifest,  # noqa: B023
                                                   mediatypes.OCI_MANIFEST))
        with transaction.atomic():
            RepoDigest.objects.get_or_create(repository=get_or_create_repository(ref), digest=str(digest),
                                             image=image)
            audit.record("push", object_id=image.id, names=[ref.familiar], attributes={"name": ref.familiar})
        line = f"{ref.tag}: digest: {digest} size: {len(manifest)}"
        progress.log(line)
        results.append({"reference": ref.familiar, "digest": str(digest), "size": len(manifest)})
    return results


def start_push(name: str, all_tags: bool = False, owner: Any = None) -> Job:
    targets = _targets(name, all_tags)  # a missing tag or bad name is said now, not by the job
    check_reachable(targets[0][0].domain)  # and a registry the outbound policy refuses
    return create_job(Job.Kind.PUSH, {"reference": name, "all_tags": all_tags}, owner=owner)


@handler(Job.Kind.PUSH)
def run_push_job(job: Job, progress: JobProgress) -> dict[str, Any]:
    pushed = push_image(job.params["reference"], all_tags=bool(job.params.get("all_tags")), owner=job.owner,
                        progress=progress)
    return {"pushed": pushed}
