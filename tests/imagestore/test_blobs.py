from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from pathlib import Path

import pytest

from imagestore.blobs import BlobStore
from imagestore.oci.digest import Digest
from imagestore.oci.errors import DigestMismatch


def _digest(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


def test_blob_is_stored_under_sha256_prefix_path(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = b"hello blob"
    digest, size = store.ingest(io.BytesIO(data))
    assert digest == _digest(data) and size == len(data)
    assert store.path(digest) == tmp_path / "sha256" / digest.hex[:2] / digest.hex
    assert store.read_bytes(digest) == data


def test_wrong_expected_digest_leaves_no_blob_and_no_temp_file(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    wrong = _digest(b"something else")
    with pytest.raises(DigestMismatch, match="expected"):
        store.ingest(io.BytesIO(b"actual bytes"), expected=wrong)
    assert not store.exists(wrong)
    assert not store.exists(_digest(b"actual bytes"))
    assert list(store.tmp_dir.iterdir()) == []


def test_writer_failing_midway_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)

    class Broken(io.RawIOBase):
        def read(self, n: int = -1) -> bytes:
            raise OSError("connection reset")

    with pytest.raises(OSError):
        store.ingest(Broken())  # type: ignore[arg-type]
    assert list(store.tmp_dir.iterdir()) == []
    assert list(store.digests()) == []


def test_concurrent_writers_of_the_same_digest_both_succeed(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = os.urandom(4 << 20)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def write() -> None:
        try:
            barrier.wait()
            with store.writer() as w:
                for i in range(0, len(data), 65536):
                    w.write(data[i:i + 65536])
                w.commit(_digest(data))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.read_bytes(_digest(data)) == data
    assert list(store.tmp_dir.iterdir()) == []


def test_gc_removes_only_unreferenced_blobs_older_than_the_grace(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    kept = store.put_bytes(b"referenced")
    old = store.put_bytes(b"orphan, old")
    young = store.put_bytes(b"orphan, just written")
    past = time.time() - 7200
    for d in (kept, old):
        os.utime(store.path(d), (past, past))
    removed = store.collect_garbage({str(kept)}, grace_seconds=3600)
    assert removed == [str(old)]
    assert store.exists(kept) and store.exists(young) and not store.exists(old)


def test_gc_clears_stale_temporary_files(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    stale = store.tmp_dir / "blob-left-by-a-killed-worker"
    stale.write_bytes(b"partial")
    past = time.time() - 7200
    os.utime(stale, (past, past))
    store.collect_garbage(set(), grace_seconds=3600)
    assert not stale.exists()


def test_blob_is_streamed_in_chunks(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = os.urandom(3 * (1 << 20) + 5)
    digest = store.put_bytes(data)
    chunks = list(store.chunks(digest))
    assert len(chunks) == 4 and max(len(c) for c in chunks) == 1 << 20
    assert b"".join(chunks) == data
