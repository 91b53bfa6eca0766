"""``docker import``: a root filesystem tarball becomes a one-layer image.

Source to sink in one pass: the upload or URL is decompressed whatever its
format, every tar entry is checked, and the tar is hashed (diff_id) and
gzip-compressed into a blob writer (digest) as it streams. Nothing is registered
until the blob is verified and renamed; a bad entry leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, cast

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from ..blobs import BlobStore, Pins, get_store
from ..errors import BadRequest, about
from ..models import Image, Job
from ..oci import mediatypes
from ..oci.changes import InvalidChange, apply_changes
from ..oci.compression import Readable, open_decompressed
from ..oci.config import ImageConfig, format_time, new_layer_config
from ..oci.errors import SizeLimitExceeded
from ..oci.layer import write_gzip_layer
from ..oci.platform import host_platform
from ..oci.redact import redact_url
from ..oci.reference import Reference
from . import audit, layerindex
from .jobs import JobProgress, create_job, handler
from .progress import NULL_PROGRESS, Progress
from .registries import outbound_policy
from .store import LayerRecord, register_image
from .tag import parse_target, tag_image

ITEM = "import"


@contextmanager
def layer_size_limit() -> Iterator[int]:
    """The cap on one layer's uncompressed bytes (every codec, plain too); a layer past it
    fails with a message naming the setting that sets it."""
    limit = settings.IMAGESTORE_MAX_LAYER_SIZE
    try:
        yield limit
    except SizeLimitExceeded as exc:
        if exc.limit != limit or "IMAGESTORE_MAX_LAYER_SIZE" in str(exc):
            raise
        raise SizeLimitExceeded(gettext("%(exc)s (IMAGESTORE_MAX_LAYER_SIZE)") % {"exc": exc}, limit) from None


class _CountingReader:
    """Reports how much of the input has been read, as the job's progress."""

    def __init__(self, raw: Readable, progress: Progress, total: int | None) -> None:
        self._raw = raw
        self._progress = progress
        self.total = total
        self.done = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.done += len(data)
        self._progress.update(ITEM, self.done, self.total, "Importing")
        return data


def import_image(
    source: Readable,
    *,
    source_name: str = "-",
    total: int | None = None,
    repository: str | None = None,
    message: str = "",
    changes: list[str] | None = None,
    progress: Progress = NULL_PROGRESS,
) -> Image:
    """Import a tarball stream (plain, gzip, bzip2, xz or zstd) as a new image; ``changes`` are
    Dockerfile instructions for its config, as ``docker import --change``."""
    with audit.action("import", names=[repository] if repository else []):
        target = parse_target(repository) if repository else None  # a bad name fails before any byte is read
        container_config = _container_config(changes)  # and bad changes too
        store = get_store()
        with store.pins() as pins:
            return _import(source, store, pins, source_name, total, target, message, container_config, progress)


def _container_config(changes: list[str] | None) -> dict[str, Any]:
    try:
        return apply_changes({}, changes or [])
    except InvalidChange as exc:
        raise BadRequest(str(exc)) from None


def _import(
    source: Readable,
    store: BlobStore,
    pins: Pins,
    source_name: str,
    total: int | None,
    target: Reference | None,
    message: str,
    container_config: dict[str, Any],
    progress: Progress,
) -> Image:
    counter = _CountingReader(source, progress, total)
    progress.update(ITEM, 0, total, "Importing")
    with layer_size_limit() as limit, store.writer() as writer:
        # The codec stops at the limit before buffering past it; write_gzip_layer checks it again
        # for plain tar.
        tar_stream = open_decompressed(counter, max_output=limit)
        indexer = layerindex.new_indexer()
        info = write_gzip_layer(tar_stream, writer, level=settings.IMAGESTORE_GZIP_LEVEL, max_size=limit,
                                indexer=indexer)
        digest = writer.commit(pins=pins)
        layerindex.save(info.diff_id, indexer)
        compressed_size = writer.size
    progress.update(ITEM, counter.done, counter.total or counter.done, "Import complete")

    now = timezone.now()
    comment = message or f"Imported from {source_name}"
    platform = host_platform()
    config_bytes = new_layer_config(
        diff_ids=[info.diff_id],
        created=now,
        architecture=platform.architecture,
        os=platform.os,
        variant=platform.variant,
        comment=comment,
        config=container_config,
        history=[{"created": format_time(now), "comment": comment}],
    )
    config = ImageConfig.parse(config_bytes)
    with store.writer() as config_writer:
        config_writer.write(config_bytes)
        config_writer.commit(config.digest, pins=pins)
    with transaction.atomic():  # the image, its name and the audit event together
        image = register_image(
            config,
            [
                LayerRecord(
                    diff_id=str(info.diff_id),
                    digest=str(digest),
                    media_type=mediatypes.OCI_LAYER_GZIP,
                    size=compressed_size,
                    uncompressed_size=info.size,
                )
            ],
            pins=pins,
        )
        if target is not None:
            tag_image(image, target)
        audit.record("import", object_id=image.id, names=[target.familiar] if target else [],
                     attributes={"source": redact_url(source_name) if "://" in source_name else source_name})
    if target is not None:
        progress.log(f"Tagged {target.familiar}")
    progress.log(image.id)
    return image


def open_url(url: str) -> tuple[BinaryIO, int | None]:
    """Open an http(s) URL for streaming; the second value is its length when known."""
    shown = redact_url(url)
    if not url.lower().startswith(("http://", "https://")):
        raise BadRequest(gettext("cannot import from %(shown)s: only http and https URLs are supported")
                         % {"shown": shown})
    try:
        # Redirects are followed by the policy's session, each hop checked like the first.
        response = outbound_policy().session().get(url, stream=True, timeout=settings.IMAGESTORE_URL_TIMEOUT)
    except requests.RequestException as exc:
        raise BadRequest(gettext("cannot download %(shown)s: %(name)s")
                         % {"shown": shown, "name": exc.__class__.__name__}) from None
    if response.status_code != 200:
        response.close()
        raise BadRequest(gettext("cannot download %(shown)s: the server answered %(status_code)s")
                         % {"shown": shown, "status_code": response.status_code})
    response.raw.decode_content = True
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() and "Content-Encoding" not in response.headers else None
    return cast(BinaryIO, _Prompt(response.raw)), total


class _Prompt:
    """Gives what has arrived (``read1``) instead of waiting for a whole chunk, so progress
    moves with a slow source as it does with a fast one."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        return bytes(self._raw.read1(n if n and n > 0 else 1 << 20))

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> _Prompt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@handler(Job.Kind.IMPORT)
def run_import_job(job: Job, progress: JobProgress) -> dict[str, Any]:
    params = job.params
    if params.get("url"):
        stream, total = open_url(params["url"])
        source_name = redact_url(params["url"])
    else:
        path = params["upload_path"]
        stream, total = open(path, "rb"), os.path.getsize(path)  # noqa: SIM115 - closed by the with below
        source_name = "-"
    with stream:
        image = import_image(
            stream,
            source_name=source_name,
            total=total,
            repository=params.get("repository") or None,
            message=params.get("message") or "",
            changes=params.get("changes") or [],
            progress=progress,
        )
    return image_result(image)


def image_result(image: Image) -> dict[str, Any]:
    """What a job that made an image reports as its result."""
    tags = [f"{t.repository.name}:{t.name}" for t in image.tags.select_related("repository")]
    return {"image": image.id, "short_id": image.short_id, "repo_tags": sorted(tags)}



def import_target(repository: str | None, tag: str | None) -> str | None:
    """``repository`` and ``tag`` as the API takes them, joined into one checked name."""
    if not repository:
        if tag:
            raise BadRequest(gettext("a tag needs a repository"), field="repository")
        return None
    with about("repository"):
        if tag:
            ref = parse_target(repository)
            if ":" in repository.rsplit("/", 1)[-1]:
                raise BadRequest(gettext("give the tag either in the repository name or as tag, not both"), field="tag")
            return ref.with_tag(tag).familiar
        return parse_target(repository).familiar


def start_import(
    *,
    upload_path: str | None = None,
    url: str | None = None,
    repository: str | None = None,
    tag: str | None = None,
    message: str = "",
    changes: list[str] | None = None,
    owner: Any = None,
) -> Job:
    """Queue an import job from an uploaded file or a URL, after checking its inputs."""
    if bool(upload_path) == bool(url):
        raise BadRequest(gettext("give either a file or a url to import from"))
    if url and not url.lower().startswith(("http://", "https://")):
        raise BadRequest(gettext("cannot import from %(value)s: only http and https URLs are supported")
                         % {"value": redact_url(url)})
    target = import_target(repository, tag)
    _container_config(changes)
    if url:
        outbound_policy().check_url(url, resolve=True)  # refused now, with a 400, rather than by the job
    params: dict[str, Any] = {"repository": target, "message": message, "changes": list(changes or [])}
    if upload_path:
        params["upload_path"] = str(upload_path)
    else:
        params["url"] = url
    return create_job(Job.Kind.IMPORT, params, owner=owner)


def start_import_from(*, upload: Any = None, url: str | None = None, repository: str | None = None,
                      tag: str | None = None, message: str = "", owner: Any = None) -> Job:
    """An import asked for from a form or the API: the name and source are checked before an
    uploaded file is kept, so a bad request leaves nothing behind."""
    from .uploads import keep_upload

    import_target(repository, tag)
    if (upload is None) == (not url):
        raise BadRequest(gettext("give either a file or a url to import from"))
    path = keep_upload(upload) if upload is not None else None
    try:
        return start_import(upload_path=str(path) if path else None, url=url, repository=repository, tag=tag,
                            message=message, owner=owner)
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise
