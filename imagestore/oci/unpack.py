"""Applying layer tars to a directory, the way a container's root filesystem is built.

Whiteouts (https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts):
``.wh.NAME`` deletes NAME from the layers below, ``.wh..wh..opq`` empties its directory.
Every path is resolved inside the root, symlinks included, with chroot semantics: an
absolute target (``/bin/sh -> /bin/busybox``) means the root's own ``/bin/busybox``,
and ``..`` never climbs above the root. Device nodes are created only when running as
root; elsewhere they are skipped, as rootless unpackers do.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from pathlib import Path

from .compression import CHUNK_SIZE, Readable
from .errors import CorruptArchive, UnsafeArchive
from .tarsafe import check_member, open_tar_stream

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_SYMLINK_HOPS = 40


def resolve_in_root(root: Path, relative: str, *, follow_last: bool = False) -> Path:
    """The real path of ``relative`` inside ``root``, following symlinks as a chroot would.

    Parent components always follow symlinks; the last one only with ``follow_last``
    (a tar entry replaces a symlink rather than writing through it).
    """
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        is_last = not parts
        if candidate.is_symlink() and (not is_last or follow_last):
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise UnsafeArchive(f"too many levels of symbolic links in {relative!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def _apply_metadata(path: Path, info: tarfile.TarInfo, privileged: bool) -> None:
    if privileged:
        try:
            os.lchown(path, info.uid, info.gid)
        except OSError:
            pass
    if not info.issym():
        os.chmod(path, info.mode & 0o7777)
    try:
        os.utime(path, (info.mtime, info.mtime), follow_symlinks=False)
    except OSError:
        pass


def apply_layer(stream: Readable, root: Path, *, privileged: bool | None = None) -> int:
    """Apply one uncompressed layer tar onto ``root``; returns the number of entries."""
    privileged = os.geteuid() == 0 if privileged is None else privileged
    root.mkdir(parents=True, exist_ok=True)
    directories: list[tuple[Path, tarfile.TarInfo]] = []
    count = 0
    with open_tar_stream(stream) as tar:
            for info in tar:
                name = check_member(info)
                count += 1
                tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps every TarInfo otherwise
                if name == ".":
                    continue
                parent_rel, _, base = name.rpartition("/")
                parent = resolve_in_root(root, parent_rel)
                if base == OPAQUE:
                    if parent.is_dir():
                        for child in parent.iterdir():
                            _remove(child)
                    continue
                if base.startswith(WHITEOUT_PREFIX):
                    target = parent / base[len(WHITEOUT_PREFIX):]
                    if target.is_symlink() or target.exists():
                        _remove(target)
                    continue
                parent.mkdir(parents=True, exist_ok=True)
                path = parent / base
                if info.isdir():
                    if path.is_symlink() or (path.exists() and not path.is_dir()):
                        _remove(path)
                    path.mkdir(exist_ok=True)
                    directories.append((path, info))
                    continue
                if path.is_symlink() or path.exists():
                    _remove(path)
                if info.isreg():
                    member = tar.extractfile(info)
                    assert member is not None
                    with open(path, "wb") as out:
                        shutil.copyfileobj(member, out, CHUNK_SIZE)
                elif info.issym():
                    os.symlink(info.linkname, path)
                elif info.islnk():
                    source = resolve_in_root(root, info.linkname)
                    if not source.exists() or source.is_dir():
                        raise CorruptArchive(f"hard link {name!r} points to {info.linkname!r}, which is not a file")
                    os.link(source, path, follow_symlinks=False)
                    continue  # a hard link shares its target's metadata
                elif info.ischr() or info.isblk() or info.isfifo():
                    if info.isfifo():
                        os.mkfifo(path, info.mode & 0o7777)
                    elif privileged:
                        kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
                        os.mknod(path, kind | (info.mode & 0o7777), os.makedev(info.devmajor, info.devminor))
                    else:
                        continue
                _apply_metadata(path, info, privileged)
    # Directory times last: writing their children changed them.
    for path, info in reversed(directories):
        _apply_metadata(path, info, privileged)
    return count
