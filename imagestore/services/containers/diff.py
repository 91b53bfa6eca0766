"""``docker diff``: a container's root against its snapshot, walked side by side with
directory descriptors (lstat only, never through a link)."""

from __future__ import annotations

import os
import stat
from typing import Any

from ...models import Container
from ...oci.rootfs import RootFS
from .lookup import RUNTIME_MOUNT_POINTS, snapshot_dir
from .network import RUNTIME_FILES
from .roots import ensure_rootfs


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
                if rel in RUNTIME_MOUNT_POINTS and is_dir and _is_empty_dir(upper_fd, name):
                    continue
                if rel in RUNTIME_FILES and stat.S_ISREG(mine.st_mode) and mine.st_size == 0:
                    continue  # the empty point runc mounted the container's own file on
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

    with RootFS(ensure_rootfs(container)) as upper, RootFS(snapshot_dir(container.snapshot)) as lower:
        compare(upper.fd, lower.fd, "")
    return [{"Path": p, "Kind": k} for p, k in sorted(changes.items())]


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
