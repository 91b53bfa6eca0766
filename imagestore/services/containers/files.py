"""``docker cp`` both ways and the path stat it asks first, inside the container's root
(imagestore.oci.rootfs: never following a link out)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

from django.conf import settings
from django.utils.translation import gettext

from ...errors import BadRequest, NotFound
from ...models import Container
from ...oci.compression import open_decompressed
from ...oci.config import format_time
from ...oci.rootfs import RootFS, clean_path, tar_of
from ...oci.unpack import apply_layer
from .freeze import frozen
from .roots import ensure_rootfs


def copy_into(container: Container, path: str, archive: BinaryIO) -> int:
    """``docker cp SRC CONTAINER:PATH`` as Docker's archive API: a tar extracted at ``path``,
    a directory that must exist. ``path`` and every entry resolve inside the container's
    root, links included; nothing is done through a link out of it, even one the running
    container swaps in while we extract (CVE-2018-15664); a running container is frozen
    meanwhile."""
    with frozen(container):
        return _copy_into(container, path, archive)


def _copy_into(container: Container, path: str, archive: BinaryIO) -> int:
    root = ensure_rootfs(container)
    try:
        with RootFS(root) as fs:
            os.close(fs.open_dir(clean_path(path)))
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(gettext("Could not find the file %(path)s in container %(container_short_id)s")
                       % {"path": path, "container_short_id": container.short_id}) from None
    except OSError as exc:
        raise BadRequest(gettext("cannot copy to %(path)s: %(strerror)s")
                         % {"path": path, "strerror": exc.strerror}) from None
    limit = settings.IMAGESTORE_MAX_LAYER_SIZE
    return apply_layer(open_decompressed(archive, max_output=limit), root, at=clean_path(path), max_bytes=limit)


def _lookup(container: Container, path: str) -> tuple[str, os.stat_result]:
    """The clean path and the entry itself (a final symlink is not followed); 404 if absent."""
    rel = clean_path(path)
    try:
        with RootFS(ensure_rootfs(container)) as fs:
            return rel, fs.lstat(rel)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(gettext("Could not find the file %(path)s in container %(container_short_id)s")
                       % {"path": path, "container_short_id": container.short_id}) from None
    except OSError as exc:
        raise BadRequest(gettext("cannot read %(path)s: %(strerror)s")
                         % {"path": path, "strerror": exc.strerror}) from None


def archive_of(container: Container, path: str) -> Iterator[bytes]:
    """``docker cp CONTAINER:PATH -``: ``path`` (and what it holds) as tar chunks, named by
    its base name, generated while the response is sent (never staged whole). Read with
    descriptors inside the root: a container's symlinks are archived as links, never
    followed out (CVE-2019-14271's class). Raises NotFound before the first chunk. A running
    container is frozen until the last chunk (or the client going away closes the stream)."""
    with frozen(container):
        _lookup(container, path)
    return _frozen_chunks(container, path)


def _frozen_chunks(container: Container, path: str) -> Iterator[bytes]:
    with frozen(container):
        yield from tar_of(ensure_rootfs(container), path)


def copy_out(container: Container, path: str, out: BinaryIO) -> None:
    """``archive_of`` written to ``out``."""
    for chunk in archive_of(container, path):
        out.write(chunk)


def path_stat(container: Container, path: str) -> dict[str, Any]:
    """What ``docker cp`` asks first (``X-Docker-Container-Path-Stat``), with Go's FileMode bits."""
    with frozen(container):
        return _path_stat(container, path)


def _path_stat(container: Container, path: str) -> dict[str, Any]:
    rel, st = _lookup(container, path)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        mode |= 1 << 31
    elif stat.S_ISLNK(st.st_mode):
        mode |= 1 << 27
    link_target = ""
    if stat.S_ISLNK(st.st_mode):
        parent, _, name = rel.rpartition("/")
        with RootFS(ensure_rootfs(container)) as fs:
            fd = fs.open_dir(parent)
            try:
                link_target = os.readlink(name, dir_fd=fd)
            finally:
                os.close(fd)
    return {"name": rel.rpartition("/")[2] or "/", "size": st.st_size, "mode": mode,
            "mtime": format_time(datetime.fromtimestamp(st.st_mtime, tz=UTC)),
            "linkTarget": link_target}
