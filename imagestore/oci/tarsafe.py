"""Checks on the entries of every tar we read, before anything trusts them.

A layer is unpacked later inside a container's root (links resolve inside that
root), so what we refuse here is what would escape it or exhaust us: absolute
member names, ``..`` components, hard links to a path outside the archive's root,
relative symlinks that climb above the root, and metadata headers larger than any
honest archive needs. Absolute symlink targets (``/bin/sh -> /bin/busybox``) and
device nodes are normal in real root filesystems and are kept.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import CorruptArchive, UnsafeArchive

# Long-name and PAX headers are read into memory by tarfile; real ones are small.
MAX_METADATA_HEADER = 1 << 20
MAX_NAME_LENGTH = 4096
# tarfile's stream reader copies what is left of its buffer on every read (each 512-byte
# header): 1 MiB made a tar of 20k small files 4x slower to read than 64 KiB, which is
# as fast for large files.
STREAM_BUFFER = 1 << 16

_METADATA_TYPES = {
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
}


# Files, directories, links, device nodes, FIFOs: what a root filesystem holds.
_ENTRY_TYPES = {
    tarfile.REGTYPE,
    tarfile.AREGTYPE,
    tarfile.CONTTYPE,
    tarfile.GNUTYPE_SPARSE,
    tarfile.DIRTYPE,
    tarfile.CHRTYPE,
    tarfile.BLKTYPE,
    tarfile.FIFOTYPE,
}


class BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses oversized metadata headers before tarfile buffers them."""

    def _proc_member(self, tarfile_: Any) -> Any:  # noqa: ANN401 - tarfile's own hook
        if self.type in _METADATA_TYPES and self.size > MAX_METADATA_HEADER:
            raise UnsafeArchive(
                f"tar metadata header claims {self.size} bytes (limit {MAX_METADATA_HEADER})"
            )
        return super()._proc_member(tarfile_)  # type: ignore[misc]


@contextmanager
def open_tar_stream(stream: Any, what: str = "tar archive") -> Iterator[tarfile.TarFile]:
    """A tar read in one pass (stream mode) with bounded metadata headers; tarfile's own
    errors become CorruptArchive naming ``what``."""
    try:
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=BoundedTarInfo, bufsize=STREAM_BUFFER) as tar:
            yield tar
    except tarfile.ReadError as exc:
        message = "the file is empty" if "empty file" in str(exc) else str(exc)
        raise CorruptArchive(f"not a valid {what}: {message}") from exc
    except (tarfile.TarError, EOFError) as exc:
        raise CorruptArchive(f"not a valid {what}: {exc}") from exc


def clean_member_name(name: str) -> str:
    """The member's path relative to the root, refusing anything that leaves it.

    ``./etc/passwd``, ``etc/passwd`` and ``etc/passwd/`` all mean ``etc/passwd``;
    the root itself is ``.``.
    """
    if len(name) > MAX_NAME_LENGTH:
        raise UnsafeArchive(f"tar entry name is longer than {MAX_NAME_LENGTH} bytes")
    if "\x00" in name:
        raise UnsafeArchive(f"tar entry {name!r} holds a NUL byte")
    if name.startswith("/"):
        raise UnsafeArchive(f"tar entry {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"tar entry {name!r} contains '..'")
    return "/".join(parts) or "."


def _climbs_out(base_dir: str, target: str) -> bool:
    # normpath would collapse "/.." to "/", hiding the climb, so count it.
    depth = 0
    for part in posixpath.join(base_dir, target).split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        else:
            depth += 1
    return False


def check_member(info: tarfile.TarInfo) -> str:
    """Validate one entry; returns its clean name. Raises UnsafeArchive."""
    name = clean_member_name(info.name)
    if info.islnk():
        target = info.linkname
        if target.startswith("/"):
            raise UnsafeArchive(f"hard link {name!r} points to absolute path {target!r}")
        clean_target = clean_member_name(target)
        if clean_target == ".":
            raise UnsafeArchive(f"hard link {name!r} points to the root directory")
    elif info.issym():
        target = info.linkname
        if not target:
            raise UnsafeArchive(f"symlink {name!r} has an empty target")
        if not target.startswith("/") and _climbs_out(posixpath.dirname(name), target):
            raise UnsafeArchive(f"symlink {name!r} -> {target!r} points outside the root")
    elif info.type not in _ENTRY_TYPES:
        raise UnsafeArchive(f"tar entry {name!r} has unsupported type {info.type!r}")
    if info.size < 0:
        raise UnsafeArchive(f"tar entry {name!r} has a negative size")
    return name
