"""``docker commit``: a container's changes become one new layer on top of its image.

The layer holds what ``docker diff`` lists: added and changed paths as they are in the
container, deleted ones as whiteouts (``.wh.NAME``). It streams through a temporary
tar into the same one-pass writer import uses (hash, gzip, verify).
"""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..blobs import get_store, mark_in_use
from ..errors import BadRequest
from ..models import Container, Image, Job
from ..oci import mediatypes
from ..oci.changes import InvalidChange, apply_changes
from ..oci.config import ImageConfig, encode, format_time
from ..oci.layer import write_gzip_layer
from ..oci.rootfs import RootFS, TarWriter
from . import audit, layerindex
from .containers import container_changes, get_container, rootfs
from .containers.freeze import frozen
from .jobs import JobProgress, create_job, handler
from .progress import NULL_PROGRESS, Progress
from .store import LayerRecord, register_image
from .tag import parse_target, tag_image


def _layer_tar(container: Container, changes: list[dict[str, Any]], target: str) -> None:
    """The changes as a tar: entries read through descriptors inside the container's root,
    each on the entry itself (a path whose parent became a symlink since the diff is
    left out, never followed)."""
    writer = TarWriter()
    with RootFS(rootfs(container)) as fs, open(target, "wb") as out:
        for change in changes:
            rel = change["Path"].lstrip("/")
            parent, _, base = rel.rpartition("/")
            if change["Kind"] == 2:
                info = tarfile.TarInfo(f"{parent}/.wh.{base}" if parent else f".wh.{base}")
                info.mtime = int(timezone.now().timestamp())
                out.write(writer.header(info))
                continue
            try:
                parent_fd = fs.open_dir(parent, follow=False)
            except OSError:
                continue
            try:
                for chunk in writer.entry(parent_fd, base, rel, recursive=False):
                    out.write(chunk)
            finally:
                os.close(parent_fd)
        out.write(writer.end())


def commit_container(container_ref: str, *, repository: str | None = None, author: str = "", message: str = "",
                     pause: bool = True, changes: list[str] | None = None,
                     progress: Progress = NULL_PROGRESS) -> Image:
    with audit.action("commit", object_type="container", names=[container_ref]):
        return _commit(container_ref, repository, author, message, pause, changes, progress)


def _commit(container_ref: str, repository: str | None, author: str, message: str, pause: bool,
            changes: list[str] | None, progress: Progress) -> Image:
    container = get_container(container_ref)
    target = parse_target(repository) if repository else None
    store = get_store()
    parent = container.image
    parent_config = ImageConfig.parse(store.read_bytes(parent.id))
    base = dict(parent_config.container_config)
    for key in ("Cmd", "Entrypoint", "WorkingDir", "User"):
        if container.config.get(key):
            base[key] = container.config[key]
    if container.config.get("Env"):
        base["Env"] = [*(base.get("Env") or []), *container.config["Env"]]
    try:
        new_config = apply_changes(base, changes or [])
    except InvalidChange as exc:
        raise BadRequest(str(exc)) from None
    # Frozen (the cgroup freezer) while its files are read, as docker commit pauses.
    with frozen(container) if pause else contextlib.nullcontext():
        diff = container_changes(container)
        progress.update("layer", 0, len(diff), "Committing")
        with tempfile.NamedTemporaryFile(dir=store.tmp_dir, prefix="commit-", suffix=".tar") as tmp:
            mark_in_use(tmp.fileno())  # GC keeps it while the commit runs, whatever the grace
            _layer_tar(container, diff, tmp.name)
            with store.pins() as pins, open(tmp.name, "rb") as source, store.writer() as writer:
                indexer = layerindex.new_indexer()
                info = write_gzip_layer(source, writer, level=settings.IMAGESTORE_GZIP_LEVEL, indexer=indexer)
                digest = writer.commit(pins=pins)
                layerindex.save(info.diff_id, indexer)
                progress.update("layer", len(diff), len(diff), "Committed")
                now = timezone.now()
                created_by = " ".join(container.config.get("Cmd") or parent_config.container_config.get("Cmd") or [])
                document = dict(parent_config.raw)
                document.update({
                    "author": author,
                    "config": new_config,
                    "container": container.id,
                    "created": format_time(now),
                    "docker_version": "",
                    "history": [*parent_config.history, {"created": format_time(now), "author": author,
                                                         "created_by": created_by, "comment": message}],
                    "rootfs": {"type": "layers", "diff_ids": [*(str(d) for d in parent_config.diff_ids),
                                                             str(info.diff_id)]},
                })
                if message:
                    document["comment"] = message
                config_bytes = encode(document)
                config = ImageConfig.parse(config_bytes)
                with store.writer() as config_writer:
                    config_writer.write(config_bytes)
                    config_writer.commit(config.digest, pins=pins)
                layers = [LayerRecord(link.layer.diff_id, link.layer.digest, link.layer.media_type, link.layer.size,
                                      link.layer.uncompressed_size)
                          for link in parent.image_layers.select_related("layer").order_by("position")]
                layers.append(LayerRecord(str(info.diff_id), str(digest), mediatypes.OCI_LAYER_GZIP, writer.size,
                                          info.size))
                with transaction.atomic():
                    image = register_image(config, layers, parent=parent, pins=pins)
                    audit.record("commit", object_type="container", object_id=container.id, names=[container.name],
                                 attributes={"imageID": image.id, "name": container.name,
                                             "comment": message})
    if target is not None:
        tag_image(image, target)
    progress.log(image.id)
    return image


def start_commit(container_ref: str, *, repository: str | None = None, tag: str | None = None, author: str = "",
                 message: str = "", pause: bool = True, changes: list[str] | None = None, owner: Any = None) -> Job:
    from .import_ import import_target

    container = get_container(container_ref)
    name = import_target(repository, tag)
    try:
        apply_changes({}, changes or [])
    except InvalidChange as exc:
        raise BadRequest(str(exc)) from None
    return create_job(Job.Kind.COMMIT, {"container": container.id, "repository": name, "author": author,
                                        "message": message, "pause": pause, "changes": changes or []}, owner=owner)


@handler(Job.Kind.COMMIT)
def run_commit_job(job: Job, progress: JobProgress) -> dict[str, Any]:
    params = job.params
    image = commit_container(params["container"], repository=params.get("repository"), author=params.get("author", ""),
                             message=params.get("message", ""), pause=params.get("pause", True),
                             changes=params.get("changes") or [], progress=progress)
    return {"image": image.id, "short_id": image.short_id}



