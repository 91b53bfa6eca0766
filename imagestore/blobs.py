"""The content-addressed blob store: ``<root>/sha256/<2 hex>/<64 hex>``.

Writes stream through a temporary file in ``<root>/tmp`` (same filesystem), are
hashed as they go, verified against the expected digest, fsynced and renamed into
place: a blob under its final name is always complete and correct. Two writers of
the same digest are safe, since both rename identical bytes onto one name.

The blob tree is ``<root>/sha256/`` only; the other folders of the data root
(uploads, exports, locks, containers, snapshots, tmp) have their own owners and
their own housekeeping in ``services.gc``. Names of blobs are deleted only under
``names_lock`` after checking, in the database, that no row references them; a
registration re-checks its pinned names under the same lock once its rows are
committed (see ``services.store``), so a deletion never removes a name a
just-committed image needs.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.utils.translation import gettext

from .oci.digest import Digest
from .oci.errors import DigestMismatch

CHUNK_SIZE = 1 << 20
# Blobs younger than this are never collected: a writer may be about to reference them.
GC_GRACE_SECONDS = 3600
# Pins of a long job live as long as it does (a day at most).
PIN_RETENTION_SECONDS = 86400
# The digest algorithms whose folders make up the blob tree: nothing else under the root is a blob.
ALGORITHMS = ("sha256",)
_HEX = {"sha256": re.compile(r"^[a-f0-9]{64}$")}
DELETE_BATCH = 500


@contextmanager
def hold_lock_file(path: Path) -> Iterator[None]:
    """An exclusive flock on ``path``, safe against ``remove_lock_file`` unlinking it.

    After the lock is granted the name is checked to still be the file locked: a
    housekeeper may have unlinked it (while holding the lock) in between, and a lock
    on an unlinked file excludes nobody. Then open it again.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(path, "a+")  # noqa: SIM115 - closed below, also when the name changed
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                handle.close()
                continue
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
            return
        finally:
            handle.close()


def remove_lock_file(path: Path, also: Iterable[Path] = ()) -> bool:
    """Unlink a lock file (and ``also``, files it guards) if nobody holds it; False when held."""
    try:
        handle = open(path)  # noqa: SIM115 - used as a context manager below
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        for guarded in also:
            guarded.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        return True


def mark_in_use(fd: int) -> None:
    """A shared flock on an open temporary file or folder of tmp/: GC leaves it, whatever
    its age (a grace of 0 included), until the descriptor is closed, by the work when it is
    done or by the kernel when its process dies (then the next GC removes the leftover)."""
    fcntl.flock(fd, fcntl.LOCK_SH)


@contextmanager
def in_use(path: Path) -> Iterator[None]:
    """``mark_in_use`` for a temporary folder (or file) while the block runs."""
    fd = os.open(path, os.O_RDONLY)
    try:
        mark_in_use(fd)
        yield
    finally:
        os.close(fd)


def is_in_use(path: Path) -> bool:
    """Whether a live process holds ``path`` with ``mark_in_use`` (links are never opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # and with it the probe's own lock
    return False


def age_of(path: Path, now: float | None = None, *, linked: bool = False) -> float:
    """Seconds since the entry was last written. With ``linked``, since it was last
    linked too: a pin is a hard link to an old blob, so its mtime is the blob's, while
    its ctime is when the pin was taken."""
    st = path.lstat()
    changed = max(st.st_mtime, st.st_ctime) if linked else st.st_mtime
    return (time.time() if now is None else now) - changed


def tree_age(path: Path, now: float | None = None, *, linked: bool = False) -> float:
    """Age of the youngest entry in a tree (a running load or build writes deep inside it)."""
    youngest = age_of(path, now, linked=linked)
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            for name in (*dirnames, *filenames):
                try:
                    youngest = min(youngest, age_of(Path(dirpath) / name, now, linked=linked))
                except FileNotFoundError:
                    continue
    return youngest


def tree_size(path: Path) -> int:
    """Bytes held by the regular files of a tree, links not followed."""
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_size
    except FileNotFoundError:
        return 0
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            total += st.st_size
    return total


class BlobNotFound(FileNotFoundError):
    pass


class Pins:
    """Pins taken for one registration, released together."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.paths: dict[str, Path] = {}
        self._held: dict[str, int] = {}  # descriptors marking each pin in use (see mark_in_use)

    def _hold(self, key: str, path: Path) -> None:
        self._let_go(key)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return
        mark_in_use(fd)
        self._held[key] = fd

    def _let_go(self, key: str) -> None:
        fd = self._held.pop(key, None)
        if fd is not None:
            os.close(fd)

    def take(self, digest: Digest | str) -> bool:
        """Pin a stored blob; False when the store does not have it."""
        key = str(digest)
        if key in self.paths:
            return True
        pin = self.store.pin(key)
        if pin is None:
            return False
        self.paths[key] = pin
        self._hold(key, pin)
        return True

    def adopt(self, digest: Digest | str, path: Path) -> None:
        old = self.paths.get(str(digest))
        if old is not None and old != path:
            old.unlink(missing_ok=True)
        self.paths[str(digest)] = path
        self._hold(str(digest), path)

    def ensure(self, digest: Digest | str) -> bool:
        """The blob is under its final name again if it was pinned; False if it is lost."""
        key = str(digest)
        if self.store.exists(key):
            return True
        if key in self.paths:
            self.store.restore(key, self.paths[key])
            return True
        return False

    def ensure_names(self, digests: Iterable[Digest | str]) -> None:
        """Put back, under ``names_lock``, any of these names a deletion removed while
        the rows that need them were being committed."""
        with self.store.names_lock():
            for digest in digests:
                self.ensure(digest)

    def release(self) -> None:
        for key, path in self.paths.items():
            path.unlink(missing_ok=True)
            self._let_go(key)
        self.paths.clear()

    def __enter__(self) -> Pins:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class BlobWriter:
    """Receives bytes, hashes them, and gives them a final name only when verified."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        fd, name = tempfile.mkstemp(prefix="blob-", dir=store.tmp_dir)
        mark_in_use(fd)  # until the file is closed: committed, aborted, or its process gone
        self._file = os.fdopen(fd, "wb")
        self.temp_path = Path(name)
        self._hasher = hashlib.sha256()
        self.size = 0
        self.digest: Digest | None = None

    def write(self, data: bytes) -> int:
        self._hasher.update(data)
        self._file.write(data)
        self.size += len(data)
        return len(data)

    def commit(self, expected: Digest | str | None = None, *, pins: Pins | None = None) -> Digest:
        """Verify and give the blob its final name. With ``pins``, the temporary name
        stays as the blob's pin until the image using it is registered."""
        actual = Digest("sha256", self._hasher.hexdigest())
        if expected is not None and str(expected) != str(actual):
            self.abort()
            raise DigestMismatch(str(expected), str(actual))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        final = self._store.path(actual)
        final.parent.mkdir(parents=True, exist_ok=True)
        if pins is None:
            os.replace(self.temp_path, final)
        else:
            try:
                os.link(self.temp_path, final)
            except FileExistsError:
                pass  # the same bytes are there already; ours still serve as the pin
            pins.adopt(actual, self.temp_path)
        self.digest = actual
        return actual

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.temp_path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.digest is None:
            self.abort()


class BlobStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, digest: Digest | str) -> Path:
        d = digest if isinstance(digest, Digest) else Digest.parse(digest)
        return self.root / d.algorithm / d.hex[:2] / d.hex

    def exists(self, digest: Digest | str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: Digest | str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(gettext("blob %(digest)s is not in the store") % {"digest": digest}) from None

    def open(self, digest: Digest | str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(gettext("blob %(digest)s is not in the store") % {"digest": digest}) from None

    def read_bytes(self, digest: Digest | str) -> bytes:
        """For small blobs only (configs, manifests)."""
        with self.open(digest) as f:
            return f.read()

    def chunks(self, digest: Digest | str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        with self.open(digest) as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def pins(self) -> Pins:
        return Pins(self)

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def ingest(self, stream: BinaryIO, expected: Digest | str | None = None) -> tuple[Digest, int]:
        """Copy a stream into the store, verified against ``expected`` when given."""
        with self.writer() as w:
            while chunk := stream.read(CHUNK_SIZE):
                w.write(chunk)
            return w.commit(expected), w.size

    def put_bytes(self, data: bytes, expected: Digest | str | None = None) -> Digest:
        with self.writer() as w:
            w.write(data)
            return w.commit(expected)

    def pin(self, digest: Digest | str) -> Path | None:
        """Hold a stored blob for an image about to be registered; None if it is gone.

        The pin is a hard link in tmp/: if a removal deletes the blob's name before
        the image's rows are committed, ``restore`` puts the same verified bytes back.
        """
        target = self.tmp_dir / f"pin-{uuid.uuid4().hex}"
        try:
            os.link(self.path(digest), target)
        except FileNotFoundError:
            return None
        return target

    def restore(self, digest: Digest | str, pin: Path) -> None:
        final = self.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(pin, final)
        except FileExistsError:
            pass

    def delete(self, digest: Digest | str) -> bool:
        try:
            self.path(digest).unlink()
            return True
        except FileNotFoundError:
            return False

    def names_lock(self) -> Any:
        """Held while blob names are checked against the database and deleted or restored."""
        return hold_lock_file(self.root / "locks" / "blob-names.lock")

    def digests(self) -> Iterator[tuple[Digest, Path]]:
        """Every blob of the blob tree. Only the algorithm folders are walked; entries
        that are not ``<algorithm>/<2 hex>/<hex>`` files are strays (see ``strays``)."""
        for digest, path, stray in self._walk():
            if digest is not None and not stray:
                yield digest, path

    def strays(self) -> Iterator[Path]:
        """Entries of the blob tree that are not blobs (fsck reports them, GC leaves them)."""
        for _digest, path, stray in self._walk():
            if stray:
                yield path

    def _walk(self) -> Iterator[tuple[Digest | None, Path, bool]]:
        for algorithm in ALGORITHMS:
            algorithm_dir = self.root / algorithm
            if not algorithm_dir.is_dir():
                continue
            for prefix_dir in algorithm_dir.iterdir():
                if not prefix_dir.is_dir() or prefix_dir.is_symlink():
                    yield None, prefix_dir, True
                    continue
                for blob in prefix_dir.iterdir():
                    ok = (_HEX[algorithm].match(blob.name) is not None and blob.name[:2] == prefix_dir.name
                          and blob.is_file() and not blob.is_symlink())
                    yield (Digest(algorithm, blob.name) if ok else None), blob, not ok

    def delete_unreferenced(self, digests: Iterable[str], referenced: Callable[[list[str]], set[str]],
                            *, dry_run: bool = False) -> list[tuple[str, int]]:
        """Delete the names of ``digests`` that ``referenced`` (asked under ``names_lock``,
        in batches) says no row needs; returns (digest, bytes) of each one deleted."""
        removed: list[tuple[str, int]] = []
        batch: list[str] = []

        def flush() -> None:
            with self.names_lock():
                keep = referenced(batch)
                for digest in batch:
                    if digest in keep:
                        continue
                    try:
                        size = self.path(digest).stat().st_size
                        if not dry_run:
                            self.path(digest).unlink()
                    except FileNotFoundError:
                        continue
                    removed.append((digest, size))
            batch.clear()

        for digest in dict.fromkeys(str(d) for d in digests):
            batch.append(digest)
            if len(batch) >= DELETE_BATCH:
                flush()
        if batch:
            flush()
        return removed

    def unreferenced(self, referenced: Iterable[str], grace_seconds: float) -> Iterator[tuple[Digest, Path]]:
        """Blobs not in ``referenced`` and older than the grace period."""
        keep = set(referenced)
        now = time.time()
        for digest, path in self.digests():
            if str(digest) in keep:
                continue
            try:
                if age_of(path, now) < grace_seconds:
                    continue
            except FileNotFoundError:
                continue
            yield digest, path

    def stale_temporary(self, grace_seconds: float) -> Iterator[Path]:
        """Leftovers in tmp/ of interrupted writers, loads and probes; pins are kept a day longer.
        What a live process still holds (``mark_in_use``) is no leftover, whatever its age."""
        now = time.time()
        for leftover in self.tmp_dir.iterdir():
            if is_in_use(leftover):
                continue
            try:
                if leftover.name.startswith("pin-"):
                    if age_of(leftover, now, linked=True) >= grace_seconds + PIN_RETENTION_SECONDS:
                        yield leftover
                elif tree_age(leftover, now) >= grace_seconds:
                    yield leftover
            except FileNotFoundError:
                continue

    def collect_garbage(self, referenced: Iterable[str], grace_seconds: float = GC_GRACE_SECONDS) -> list[str]:
        """Delete blobs not in ``referenced``; returns the digests removed.

        Blobs newer than the grace period are kept, since a pull or import may have
        written one and not yet committed the row that references it. Leftover
        temporary files from interrupted writers are cleared the same way. The
        service (``services.gc``) checks references again under ``names_lock``.
        """
        keep = set(referenced)
        candidates = [str(digest) for digest, _path in self.unreferenced(keep, grace_seconds)]
        removed = [digest for digest, _size in self.delete_unreferenced(candidates, lambda batch: keep & set(batch))]
        for leftover in self.stale_temporary(grace_seconds):
            remove_tree(leftover)
        return removed


def remove_tree(path: Path) -> None:
    """Remove a file or a directory tree (links are removed, never followed)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def get_store() -> BlobStore:
    return BlobStore(settings.IMAGESTORE_ROOT)
