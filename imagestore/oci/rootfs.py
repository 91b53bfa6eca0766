"""Filesystem operations confined to a root: an image snapshot or a container's root.

Every path is resolved inside the root as the kernel resolves it after ``chroot``: an
absolute symlink target (``/bin/sh -> /bin/busybox``) means the root's own
``/bin/busybox``, and ``..`` never climbs above the root. Resolution uses openat2(2)
with ``RESOLVE_IN_ROOT`` where the kernel has it (Linux 5.6+); elsewhere a walk one
component at a time, each opened with ``O_NOFOLLOW`` relative to its parent's
descriptor, symlinks read and resolved by us with the same chroot rules.

What is then done to an entry is done relative to its parent's descriptor, on the
entry itself: ``fchownat``/``utimensat`` with ``AT_SYMLINK_NOFOLLOW``, chmod only on a
descriptor opened with ``O_NOFOLLOW`` (Linux symlinks have no mode of their own),
``unlinkat``, ``mkdirat``, ``symlinkat``, ``linkat`` without following. A path that a
running container swaps for a symlink while we work can at worst send us somewhere
else inside the same root, never out of it (the CVE-2018-15664 class).

Reference behaviour: umoci's unpacker (github.com/opencontainers/umoci, oci/layer),
containerd's archive package (archive/tar.go) and cyphar/filepath-securejoin.
"""

from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import shutil
import stat
import tarfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from .errors import UnsafeArchive

MAX_SYMLINK_HOPS = 40
CHUNK = 1 << 20
BLOCK = 512

# openat2(2): include/uapi/linux/openat2.h. The syscall number is the same on every
# architecture that got it after the 5.1 unification (all but alpha).
_SYS_OPENAT2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc: ctypes.CDLL | None = None
# None: not tried yet; False: the kernel (or a seccomp filter) refuses it.
openat2_available: bool | None = None


def _openat2(dir_fd: int, path: str, flags: int, resolve: int) -> int | None:
    """openat2(2), or None when this kernel does not have it."""
    global _libc, openat2_available
    if openat2_available is False:
        return None
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    how = _OpenHow(flags | os.O_CLOEXEC, 0, resolve)
    for _attempt in range(16):
        fd = _libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dir_fd), ctypes.c_char_p(os.fsencode(path)),
                           ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            openat2_available = True
            return int(fd)
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EPERM) and openat2_available is None:
            openat2_available = False
            return None
        if err == errno.EAGAIN:  # a rename raced with a ".." lookup: the kernel asks to retry
            continue
        raise OSError(err, os.strerror(err), path)
    return None  # still racing: the careful walk below copes


def components(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def clean_path(path: str) -> str:
    """A path given by a person (``/etc/../var/``) as a clean path relative to the root
    (``var``), ``..`` collapsed lexically first, as Docker's archive API does."""
    return posixpath.normpath("/" + (path or "/")).lstrip("/")


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


class RootFS:
    """A directory used as ``/``. Open it once, then resolve and act through it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RootFS:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- resolution ----------------------------------------------------------------------------

    def open(self, rel: str, flags: int = os.O_PATH, *, follow_last: bool = True, follow: bool = True,
             create_dirs: bool = False) -> int:
        """A descriptor of ``rel`` resolved inside the root; the caller closes it.

        ``follow=False`` refuses any symlink on the way (ELOOP) instead of resolving it
        in the root; ``follow_last=False`` opens a final symlink itself (with O_PATH) or
        fails with ELOOP. ``create_dirs`` makes missing directories (mode 0755).
        """
        rel = "/".join(components(rel)) or "."
        if not follow_last:
            flags |= os.O_NOFOLLOW
        resolve = RESOLVE_NO_MAGICLINKS | (RESOLVE_IN_ROOT if follow else RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
        try:
            fd = _openat2(self.fd, rel, flags, resolve)
        except FileNotFoundError:
            if not create_dirs:
                raise
            fd = None
        if fd is not None:
            return fd
        return self._walk(rel, flags, follow_last=follow_last, follow=follow, create_dirs=create_dirs)

    def _walk(self, rel: str, flags: int, *, follow_last: bool, follow: bool, create_dirs: bool) -> int:
        """The same resolution without openat2: one component at a time, never following."""
        parts = deque(rel.split("/"))
        stack = [os.dup(self.fd)]  # the directories walked through, root first: ".." pops
        hops = 0
        try:
            while parts:
                part = parts.popleft()
                if part in ("", "."):
                    continue
                if part == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue
                here = stack[-1]
                last = not parts
                try:
                    st = os.stat(part, dir_fd=here, follow_symlinks=False)
                except FileNotFoundError:
                    if not create_dirs or last and not flags & os.O_DIRECTORY:
                        raise
                    try:
                        os.mkdir(part, 0o755, dir_fd=here)
                    except FileExistsError:
                        pass
                    st = os.stat(part, dir_fd=here, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode) and (follow_last or not last):
                    if not follow:
                        raise OSError(errno.ELOOP, "a symbolic link on the way", rel)
                    hops += 1
                    if hops > MAX_SYMLINK_HOPS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), rel)
                    target = os.readlink(part, dir_fd=here)
                    if target.startswith("/"):
                        _close(stack[1:])
                        del stack[1:]
                    parts.extendleft(reversed(target.split("/")))
                    continue
                if last:
                    return os.open(part, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=here)
                # O_NOFOLLOW|O_DIRECTORY: a symlink swapped in since the stat fails (ENOTDIR).
                stack.append(os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=here))
            return os.open(".", flags | os.O_CLOEXEC, dir_fd=stack[-1])
        finally:
            _close(stack)

    def open_dir(self, rel: str, *, create: bool = False, follow: bool = True) -> int:
        """An O_PATH descriptor of the directory ``rel`` (symlinks resolved in the root)."""
        return self.open(rel, os.O_PATH | os.O_DIRECTORY, follow=follow, create_dirs=create)

    def lstat(self, rel: str) -> os.stat_result:
        """The entry ``rel`` itself (a final symlink is not followed)."""
        parent, _, name = "/".join(components(rel)).rpartition("/")
        if not name:
            return os.fstat(self.fd)
        fd = self.open_dir(parent)
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)

    def read_file(self, rel: str, limit: int) -> bytes:
        """The content of the regular file ``rel`` (symlinks followed inside the root),
        at most ``limit`` bytes; ValueError past it or when it is not a regular file."""
        # Checked before it is opened for reading: opening a device node or a FIFO a
        # container made can have effects of its own.
        path_fd = self.open(rel, os.O_PATH)
        try:
            if not stat.S_ISREG(os.fstat(path_fd).st_mode):
                raise ValueError(f"/{rel} is not a regular file")
            try:
                fd = os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError:  # no /proc: open it again, checked again below
                fd = self.open(rel, os.O_RDONLY | os.O_NONBLOCK)
        finally:
            os.close(path_fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ValueError(f"/{rel} is not a regular file")
            data = bytearray()
            while len(data) <= limit:
                chunk = os.read(fd, min(CHUNK, limit + 1 - len(data)))
                if not chunk:
                    return bytes(data)
                data += chunk
            raise ValueError(f"/{rel} is larger than {limit} bytes")
        finally:
            os.close(fd)


# --- acting on one entry of a directory (dir_fd, name): never through a link ---------------------------

def check_name(name: str) -> str:
    """One directory entry's name: not empty, '.', '..', and no '/'."""
    if name in ("", ".", "..") or "/" in name or "\x00" in name:
        raise UnsafeArchive(f"{name!r} is not a file name")
    return name


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove_at(dir_fd: int, name: str) -> bool:
    """Remove the entry (a directory with all it holds); False when there was none."""
    st = lstat_at(dir_fd, check_name(name))
    if st is None:
        return False
    if stat.S_ISDIR(st.st_mode):
        # rmtree's fd-based walk refuses to follow symlinks (it compares lstat and fstat).
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)
    return True


def remove_children(dir_fd: int) -> None:
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        names = os.listdir(fd)
    finally:
        os.close(fd)
    for name in names:
        remove_at(dir_fd, name)


def chown_at(dir_fd: int, name: str, uid: int, gid: int) -> None:
    os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)


def chmod_at(dir_fd: int, name: str, mode: int) -> None:
    """Set the mode of the entry itself; a symlink is left alone (Linux has no lchmod)."""
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            return
        try:
            # An O_PATH descriptor can't be fchmod-ed; its /proc link names exactly this inode.
            os.chmod(f"/proc/self/fd/{fd}", mode)
        except FileNotFoundError:  # no /proc: glibc's fchmodat(AT_SYMLINK_NOFOLLOW)
            os.chmod(name, mode, dir_fd=dir_fd, follow_symlinks=False)
    finally:
        os.close(fd)


def utime_at(dir_fd: int, name: str, mtime: float) -> None:
    os.utime(name, (mtime, mtime), dir_fd=dir_fd, follow_symlinks=False)


# --- reading a tree out as a tar, never leaving the root --------------------------------------------------

def _open_regular(dir_fd: int, name: str) -> int:
    """The regular file ``name`` opened for reading, or -1 if it is something else now.
    Checked on an O_PATH descriptor first: opening a device node or FIFO a container
    swapped in (containers may mknod) can have effects of its own."""
    path_fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(path_fd).st_mode):
            return -1
        try:
            return os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # no /proc; O_NONBLOCK: a FIFO swapped in meanwhile can't hang us
            return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    finally:
        os.close(path_fd)


# What opening an entry we just lstat-ed gives when a running container changed it meanwhile.
_CHANGED_UNDER_US = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENXIO)


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _info(arcname: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    return info


class TarWriter:
    """Entries of a root as tar bytes, yielded a chunk at a time (nothing staged whole).

    Each entry is opened relative to its parent's descriptor with O_NOFOLLOW, so a
    directory swapped for a symlink while we read is never followed out of the root.
    Files that appear more than once (hard links) become link entries, as tar does.
    """

    def __init__(self) -> None:
        self._links: dict[tuple[int, int], str] = {}

    def entry(self, dir_fd: int, name: str, arcname: str, *, recursive: bool) -> Iterator[bytes]:
        """The entry ``name`` of ``dir_fd`` (the directory itself when ``name`` is '')."""
        if not name:
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
            yield from self._directory(fd, arcname, recursive=recursive)
            return
        st = lstat_at(dir_fd, name)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno in _CHANGED_UNDER_US:
                    return  # swapped for something else since the lstat: skip, never follow
                raise
            yield from self._directory(fd, arcname, recursive=recursive)
        elif stat.S_ISREG(st.st_mode):
            yield from self._file(dir_fd, name, arcname, st)
        elif stat.S_ISLNK(st.st_mode):
            info = _info(arcname, st)
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(name, dir_fd=dir_fd)
            yield _header(info)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            info = _info(arcname, st)
            info.type = (tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else
                         tarfile.BLKTYPE if stat.S_ISBLK(st.st_mode) else tarfile.FIFOTYPE)
            if not stat.S_ISFIFO(st.st_mode):
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            yield _header(info)
        # sockets are left out, as tar leaves them out

    def _directory(self, fd: int, arcname: str, *, recursive: bool) -> Iterator[bytes]:
        try:
            info = _info(arcname, os.fstat(fd))
            info.type = tarfile.DIRTYPE
            yield _header(info)
            if recursive:
                for child in sorted(os.listdir(fd)):
                    yield from self.entry(fd, child, f"{arcname}/{child}", recursive=True)
        finally:
            os.close(fd)

    def _file(self, dir_fd: int, name: str, arcname: str, st: os.stat_result) -> Iterator[bytes]:
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self._links:
            info = _info(arcname, st)
            info.type = tarfile.LNKTYPE
            info.linkname = self._links[key]
            yield _header(info)
            return
        try:
            fd = _open_regular(dir_fd, name)
        except OSError as exc:
            if exc.errno in _CHANGED_UNDER_US:
                return
            raise
        if fd < 0:
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return
            if st.st_nlink > 1:
                self._links[(st.st_dev, st.st_ino)] = arcname
            info = _info(arcname, st)
            info.size = st.st_size
            yield _header(info)
            left = st.st_size
            while left:
                chunk = os.read(fd, min(CHUNK, left))
                if not chunk:  # shrunk while we read: keep the size the header promised
                    chunk = b"\0" * min(CHUNK, left)
                left -= len(chunk)
                yield chunk
            if st.st_size % BLOCK:
                yield b"\0" * (BLOCK - st.st_size % BLOCK)
        finally:
            os.close(fd)

    @staticmethod
    def header(info: tarfile.TarInfo) -> bytes:
        return _header(info)

    @staticmethod
    def end() -> bytes:
        return b"\0" * (2 * BLOCK)


def tar_of(root: str | os.PathLike[str], path: str) -> Iterator[bytes]:
    """``path`` inside ``root`` (and all it holds) as tar chunks, named by its base name
    (``.`` for the root itself); a final symlink is archived as the link it is."""
    rel = clean_path(path)
    parent, _, name = rel.rpartition("/")
    with RootFS(root) as fs:
        dir_fd = fs.open_dir(parent)
        try:
            writer = TarWriter()
            yield from writer.entry(dir_fd, name, name or ".", recursive=True)
            yield writer.end()
        finally:
            os.close(dir_fd)
