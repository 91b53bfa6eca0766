"""The content-addressed blob store: ``<root>/sha256/<2 hex>/<64 hex>``.

Writes stream through a temporary file in ``<root>/tmp`` (same filesystem), are
hashed as they go, verified against the expected digest, fsynced and renamed into
place: a blob under its final name is always complete and correct. Two writers of
the same digest are safe, since both rename identical bytes onto one name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from .oci.digest import Digest
from .oci.errors import DigestMismatch

CHUNK_SIZE = 1 << 20
# Blobs younger than this are never collected: a writer may be about to reference them.
GC_GRACE_SECONDS = 3600


class BlobNotFound(FileNotFoundError):
    pass


class Pins:
    """Pins taken for one registration, released together."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.paths: dict[str, Path] = {}

    def take(self, digest: Digest | str) -> bool:
        """Pin a stored blob; False when the store does not have it."""
        key = str(digest)
        if key in self.paths:
            return True
        pin = self.store.pin(key)
        if pin is None:
            return False
        self.paths[key] = pin
        return True

    def adopt(self, digest: Digest | str, path: Path) -> None:
        old = self.paths.get(str(digest))
        if old is not None and old != path:
            old.unlink(missing_ok=True)
        self.paths[str(digest)] = path

    def ensure(self, digest: Digest | str) -> bool:
        """The blob is under its final name again if it was pinned; False if it is lost."""
        key = str(digest)
        if self.store.exists(key):
            return True
        if key in self.paths:
            self.store.restore(key, self.paths[key])
            return True
        return False

    def release(self) -> None:
        for path in self.paths.values():
            path.unlink(missing_ok=True)
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
            raise BlobNotFound(f"blob {digest} is not in the store") from None

    def open(self, digest: Digest | str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"blob {digest} is not in the store") from None

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

    def digests(self) -> Iterator[tuple[Digest, Path]]:
        for algorithm_dir in self.root.iterdir():
            if algorithm_dir.name == "tmp" or not algorithm_dir.is_dir():
                continue
            for prefix_dir in algorithm_dir.iterdir():
                for blob in prefix_dir.iterdir():
                    yield Digest(algorithm_dir.name, blob.name), blob

    def collect_garbage(self, referenced: Iterable[str], grace_seconds: float = GC_GRACE_SECONDS) -> list[str]:
        """Delete blobs no row references; returns the digests removed.

        Blobs newer than the grace period are kept, since a pull or import may have
        written one and not yet committed the row that references it. Leftover
        temporary files from interrupted writers are cleared the same way.
        """
        keep = set(referenced)
        cutoff = time.time() - grace_seconds
        removed = []
        for digest, path in self.digests():
            if str(digest) in keep:
                continue
            try:
                if path.stat().st_mtime > cutoff:
                    continue
                path.unlink()
                removed.append(str(digest))
            except FileNotFoundError:
                continue
        for leftover in self.tmp_dir.iterdir():
            try:
                # Pins of a long job live as long as it does (a day at most).
                limit = cutoff - 86400 if leftover.name.startswith("pin-") else cutoff
                if leftover.stat().st_mtime <= limit:
                    leftover.unlink()
            except FileNotFoundError:
                continue
        return removed


def get_store() -> BlobStore:
    return BlobStore(settings.IMAGESTORE_ROOT)
