"""Applying layer tars to a directory, the way a container's root filesystem is built.

Whiteouts (https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts):
``.wh.NAME`` deletes NAME from the layers below, ``.wh..wh..opq`` empties its directory;
a whiteout of an empty name, ``.`` or ``..`` is refused. Every path is resolved inside
the root with chroot semantics (``rootfs.RootFS``): an absolute target
(``/bin/sh -> /bin/busybox``) means the root's own ``/bin/busybox`` and ``..`` never
climbs above the root; entries are then created and their metadata set relative to
their parent's descriptor, on the entry itself, so no step follows a link out of the
root (umoci and containerd behave the same). Hard links reach only entries already in
the root, never a directory. Regular files count at their apparent size (sparse ones
included) against ``max_bytes``. Device nodes are created only when running as root;
elsewhere they are skipped, as rootless unpackers do.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .compression import CHUNK_SIZE, Readable
from .errors import CorruptArchive, UnsafeArchive
from .rootfs import (
    RootFS,
    check_name,
    chmod_at,
    chown_at,
    clean_path,
    lstat_at,
    remove_at,
    remove_children,
    utime_at,
)
from .tarsafe import check_member, open_tar_stream

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"


def whiteout_target(base: str) -> str:
    """The name a ``.wh.NAME`` entry deletes; refuses names that are not one entry."""
    target = base[len(WHITEOUT_PREFIX):]
    if target in ("", ".", ".."):
        raise UnsafeArchive(f"whiteout {base!r} does not name an entry")
    return check_name(target)


@dataclass
class _Directory:
    rel: str
    mode: int
    uid: int
    gid: int
    mtime: float


class _Parents:
    """The last parent directory opened, kept while entries of one directory follow each
    other; dropped whenever something is removed (that may change what a path means)."""

    def __init__(self, fs: RootFS) -> None:
        self.fs = fs
        self.rel: str | None = None
        self.fd = -1

    def get(self, rel: str, *, create: bool) -> int:
        if rel != self.rel:
            self.drop()
            self.fd = self.fs.open_dir(rel, create=create)
            self.rel = rel
        return self.fd

    def drop(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.fd, self.rel = -1, None


def _join(at: str, name: str) -> str:
    return f"{at}/{name}" if at else name


def _set_metadata(dir_fd: int, name: str, info: tarfile.TarInfo, privileged: bool) -> None:
    if privileged:
        try:
            chown_at(dir_fd, name, info.uid, info.gid)
        except OSError:
            pass
    if not info.issym():
        chmod_at(dir_fd, name, info.mode & 0o7777)
    try:
        utime_at(dir_fd, name, info.mtime)
    except OSError:
        pass


def _write_file(dir_fd: int, name: str, tar: tarfile.TarFile, info: tarfile.TarInfo, privileged: bool) -> None:
    # O_EXCL|O_NOFOLLOW: a new inode, never an existing file or a symlink's target.
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    with open(fd, "wb", closefd=True) as out:
        member = tar.extractfile(info)
        assert member is not None
        while chunk := member.read(CHUNK_SIZE):
            out.write(chunk)
        out.flush()
        if privileged:
            try:
                os.fchown(fd, info.uid, info.gid)
            except OSError:
                pass
        os.fchmod(fd, info.mode & 0o7777)  # after chown, which clears setuid bits
        os.utime(fd, (info.mtime, info.mtime))


def _finish_directory(fs: RootFS, directory: _Directory, privileged: bool) -> None:
    """Mode, owner and times of a directory, set on the directory itself: if a later
    entry replaced it with a symlink (finding 1: ``x/`` 04777 then ``x -> /usr/bin/python3``),
    there is nothing to set."""
    parent, _, name = directory.rel.rpartition("/")
    try:
        parent_fd = fs.open_dir(parent)
    except OSError:
        return
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return
        raise
    finally:
        os.close(parent_fd)
    try:
        if privileged:
            try:
                os.fchown(fd, directory.uid, directory.gid)
            except OSError:
                pass
        os.fchmod(fd, directory.mode)
        os.utime(fd, (directory.mtime, directory.mtime))
    finally:
        os.close(fd)


def apply_layer(stream: Readable, root: Path, *, privileged: bool | None = None, at: str = "/",
                max_bytes: int | None = None) -> int:
    """Apply one uncompressed layer tar onto ``root``; returns the number of entries.

    ``at`` is the directory inside the root the tar is extracted into (``docker cp``),
    resolved in the root; links in the tar still resolve against the root itself.
    ``max_bytes`` bounds the total apparent size of the files written.
    """
    privileged = os.geteuid() == 0 if privileged is None else privileged
    root.mkdir(parents=True, exist_ok=True)
    base = clean_path(at)
    directories: list[_Directory] = []
    count = 0
    total = 0
    with RootFS(root) as fs, open_tar_stream(stream) as tar:
        parents = _Parents(fs)
        try:
            for info in tar:
                name = check_member(info)
                count += 1
                tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps every TarInfo otherwise
                if name == ".":
                    continue
                rel = _join(base, name)
                parent_rel, _, entry = rel.rpartition("/")
                if entry == OPAQUE or entry.startswith(WHITEOUT_PREFIX):
                    target = None if entry == OPAQUE else whiteout_target(entry)
                    parents.drop()
                    try:
                        parent_fd = fs.open_dir(parent_rel)
                    except (FileNotFoundError, NotADirectoryError):
                        continue  # nothing below to hide
                    try:
                        if target is None:
                            remove_children(parent_fd)
                        else:
                            remove_at(parent_fd, target)
                    finally:
                        os.close(parent_fd)
                    continue
                if info.isreg():
                    total += info.size  # the apparent size: a sparse entry's holes count
                    if max_bytes is not None and total > max_bytes:
                        raise UnsafeArchive(
                            f"layer unpacks to more than the limit of {max_bytes} bytes "
                            f"(IMAGESTORE_MAX_LAYER_SIZE); {name!r} alone is {info.size} bytes"
                        )
                try:
                    parent_fd = parents.get(parent_rel, create=True)
                except NotADirectoryError:
                    raise CorruptArchive(f"cannot create {name!r}: its parent is not a directory") from None
                existing = lstat_at(parent_fd, entry)
                if info.isdir():
                    if existing is None or not stat.S_ISDIR(existing.st_mode):
                        if existing is not None:
                            remove_at(parent_fd, entry)
                            parents.drop()
                            parent_fd = parents.get(parent_rel, create=True)
                        os.mkdir(entry, 0o755, dir_fd=parent_fd)
                    directories.append(_Directory(rel, info.mode & 0o7777, info.uid, info.gid, info.mtime))
                    continue
                source_fd = -1
                if info.islnk():
                    source_fd, source = _link_source(fs, _join(base, check_member_link(info)), name)
                try:
                    if existing is not None:
                        remove_at(parent_fd, entry)
                        parents.drop()
                        parent_fd = parents.get(parent_rel, create=True)
                    if info.isreg():
                        _write_file(parent_fd, entry, tar, info, privileged)
                        continue
                    if info.issym():
                        os.symlink(info.linkname, entry, dir_fd=parent_fd)
                    elif info.islnk():
                        os.link(source, entry, src_dir_fd=source_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
                        continue  # a hard link shares its target's metadata
                    elif info.isfifo():
                        os.mkfifo(entry, info.mode & 0o7777, dir_fd=parent_fd)
                    elif info.ischr() or info.isblk():
                        if not privileged:
                            continue
                        kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
                        os.mknod(entry, kind | (info.mode & 0o7777), os.makedev(info.devmajor, info.devminor),
                                 dir_fd=parent_fd)
                    _set_metadata(parent_fd, entry, info, privileged)
                finally:
                    if source_fd >= 0:
                        os.close(source_fd)
        finally:
            parents.drop()
        # Directory modes and times last: writing their children changed the times, and a
        # read-only directory would have refused them.
        for directory in reversed(directories):
            _finish_directory(fs, directory, privileged)
    return count


def check_member_link(info: tarfile.TarInfo) -> str:
    # check_member has refused absolute and climbing hard link names already.
    return "/".join(p for p in info.linkname.split("/") if p not in ("", "."))


def _link_source(fs: RootFS, rel: str, name: str) -> tuple[int, str]:
    """The parent descriptor and name of a hard link's source: an entry already in the
    root (parents resolved in the root), never a directory."""
    parent_rel, _, source = rel.rpartition("/")
    try:
        parent_fd = fs.open_dir(parent_rel)
    except (FileNotFoundError, NotADirectoryError):
        raise CorruptArchive(f"hard link {name!r} points to {rel!r}, which is not in the root") from None
    st = lstat_at(parent_fd, source)
    if st is None or stat.S_ISDIR(st.st_mode):
        os.close(parent_fd)
        raise CorruptArchive(f"hard link {name!r} points to {rel!r}, which is not a file")
    return parent_fd, source
