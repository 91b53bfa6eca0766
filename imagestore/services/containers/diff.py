"""``docker diff``: a container's root against its image, walked with directory descriptors
(lstat only, never through a link). The image side is its layers' index (the merged view, see
services.files), so nothing of the image is read from disk; an image whose layers cannot be
indexed is compared with its snapshot instead, walked side by side the same way."""

from __future__ import annotations

import logging
import os
import stat
from typing import Any

from ...errors import ServiceError
from ...models import Container
from ...oci.errors import OCIError
from ...oci.layerindex import DIR, FILE, HARDLINK, SYMLINK
from ...oci.rootfs import RootFS
from .lookup import RUNTIME_MOUNT_POINTS, snapshot_dir
from .network import RUNTIME_FILES
from .roots import ensure_rootfs

log = logging.getLogger(__name__)


def _signature(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_mode, st.st_uid, st.st_gid, st.st_size, int(st.st_mtime_ns), st.st_rdev)


def _entries(dir_fd: int | None) -> dict[str, os.stat_result]:
    """The entries of a directory, by name, each lstat-ed relative to its descriptor."""
    if dir_fd is None:
        return {}
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        with os.scandir(fd) as listing:
            return {entry.name: entry.stat(follow_symlinks=False) for entry in listing}
    finally:
        os.close(fd)


def _open_subdir(dir_fd: int | None, name: str) -> int | None:
    """A directory entry opened without following a link (None if it changed under us)."""
    if dir_fd is None:
        return None
    try:
        return os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None


def container_changes(container: Container) -> list[dict[str, Any]]:
    """``docker diff``: Kind 0 changed, 1 added, 2 deleted, paths sorted.

    The container's root and its image's snapshot are walked side by side through
    directory descriptors, every entry lstat-ed: a symlink is compared as a link and
    never followed, so a container can't make us list or read anything outside it.
    """
    changes: dict[str, int] = {}

    def mark(rel: str, kind: int) -> None:
        changes[rel] = kind
        parent = os.path.dirname(rel)
        while parent not in ("", "/"):
            changes.setdefault(parent, 0)
            parent = os.path.dirname(parent)

    def compare(upper_fd: int, lower_fd: int | None, prefix: str) -> None:
        ours, theirs = _entries(upper_fd), _entries(lower_fd)
        for name in sorted(ours):
            rel = f"{prefix}/{name}"
            mine, other = ours[name], theirs.get(name)
            is_dir = stat.S_ISDIR(mine.st_mode)
            if other is None:
                if not _runtime_placeholder(rel, mine, upper_fd, name):
                    mark(rel, 1)
            elif is_dir and stat.S_ISDIR(other.st_mode):
                if (mine.st_mode, mine.st_uid, mine.st_gid) != (other.st_mode, other.st_uid, other.st_gid):
                    mark(rel, 0)
            elif _signature(mine) != _signature(other) or (
                stat.S_ISLNK(mine.st_mode) and os.readlink(name, dir_fd=upper_fd) != _readlink(lower_fd, name)
            ):
                mark(rel, 0)
            if is_dir:
                child = _open_subdir(upper_fd, name)
                if child is None:
                    continue
                below = _open_subdir(lower_fd, name) if other is not None and stat.S_ISDIR(other.st_mode) else None
                try:
                    compare(child, below, rel)
                finally:
                    os.close(child)
                    if below is not None:
                        os.close(below)
        for name in theirs:
            if name not in ours:
                mark(f"{prefix}/{name}", 2)  # a deleted directory is one entry

    tree = _image_tree(container)
    if tree is not None:
        with RootFS(ensure_rootfs(container)) as upper:
            _compare_with_index(upper.fd, tree, "", mark)
        return [{"Path": p, "Kind": k} for p, k in sorted(changes.items())]
    with RootFS(ensure_rootfs(container)) as upper, RootFS(snapshot_dir(container.snapshot)) as lower:
        compare(upper.fd, lower.fd, "")
    return [{"Path": p, "Kind": k} for p, k in sorted(changes.items())]


def _image_tree(container: Container) -> Any:
    from .. import files

    try:
        return files.contents(container.image).merged
    except (OCIError, ServiceError, OSError) as exc:
        log.warning("docker diff of %s: no index of its image (%s); comparing with its snapshot", container.id, exc)
        return None


_INDEX_TYPES = {stat.S_IFREG: (FILE, HARDLINK), stat.S_IFDIR: (DIR,), stat.S_IFLNK: (SYMLINK,),
                stat.S_IFCHR: ("char",), stat.S_IFBLK: ("block",), stat.S_IFIFO: ("fifo",)}


def _differs(st: os.stat_result, entry: Any, tree: Any, upper_fd: int, name: str) -> bool:
    """Whether an entry of the container's root differs from the image's, as Docker's
    overlay diff sees it: type, permissions, owner, size and mtime (seconds), link target."""
    if entry.type == HARDLINK:  # the same file as its target: compare with what that holds
        target = tree.nodes.get(entry.link)
        if target is not None:
            entry = target.entry
    if entry.type not in _INDEX_TYPES.get(stat.S_IFMT(st.st_mode), ()):
        return True
    if (st.st_uid, st.st_gid) != (entry.uid, entry.gid):
        return True
    if entry.type == SYMLINK:  # a link's own mode is always 0777 on Linux, whatever the tar said
        return os.readlink(name, dir_fd=upper_fd) != entry.link or int(st.st_mtime) != entry.mtime
    if stat.S_IMODE(st.st_mode) != entry.mode:
        return True
    if entry.type == DIR:
        return False
    return (entry.type == FILE and st.st_size != entry.size) or int(st.st_mtime) != entry.mtime


def _compare_with_index(upper_fd: int, tree: Any, prefix: str, mark: Any) -> None:
    ours = _entries(upper_fd)
    directory = prefix.lstrip("/")
    theirs = tree.children.get(directory, set())
    for name in sorted(ours):
        rel = f"{prefix}/{name}"
        path = rel.lstrip("/")
        mine = ours[name]
        node = tree.nodes.get(path)
        is_dir = stat.S_ISDIR(mine.st_mode)
        if node is None:
            if not _runtime_placeholder(rel, mine, upper_fd, name):
                mark(rel, 1)
        elif path not in tree.implied and _differs(mine, node.entry, tree, upper_fd, name):
            mark(rel, 0)
        if is_dir:
            child = _open_subdir(upper_fd, name)
            if child is None:
                continue
            try:
                if node is None or node.entry.type != DIR:
                    _all_added(child, rel, mark)
                else:
                    _compare_with_index(child, tree, rel, mark)
            finally:
                os.close(child)
    for name in theirs:
        if name not in ours:
            mark(f"{prefix}/{name}", 2)  # a deleted directory is one entry


def _all_added(dir_fd: int, prefix: str, mark: Any) -> None:
    for name, st in _entries(dir_fd).items():
        rel = f"{prefix}/{name}"
        mark(rel, 1)
        if stat.S_ISDIR(st.st_mode):
            child = _open_subdir(dir_fd, name)
            if child is not None:
                try:
                    _all_added(child, rel, mark)
                finally:
                    os.close(child)


def _runtime_placeholder(rel: str, mine: os.stat_result, upper_fd: int, name: str) -> bool:
    """An entry only the runtime made in the upper layer, which ``docker diff`` does not show: an
    empty mount point it created, or the empty file it bind-mounted the container's own file on."""
    if rel in RUNTIME_MOUNT_POINTS and stat.S_ISDIR(mine.st_mode) and _is_empty_dir(upper_fd, name):
        return True
    return rel in RUNTIME_FILES and stat.S_ISREG(mine.st_mode) and mine.st_size == 0


def _is_empty_dir(dir_fd: int, name: str) -> bool:
    fd = _open_subdir(dir_fd, name)
    if fd is None:
        return False
    try:
        return not _entries(fd)
    finally:
        os.close(fd)


def _readlink(dir_fd: int | None, name: str) -> str | None:
    if dir_fd is None:
        return None
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None
