"""The diff_id of a layer (sha256 of its uncompressed tar) computed while its bytes pass by.

Used wherever a layer arrives compressed (a pull, a load): decompressing and hashing run
on a thread of their own, fed through a small bounded queue, so receiving the bytes and
verifying them use two cores at once and memory stays flat.
"""

from __future__ import annotations

import hashlib
import queue
import threading

from .compression import PushDecompressor, detect
from .digest import Digest
from .errors import CorruptArchive


class DiffIdHasher:
    """Hashes the uncompressed bytes of a layer as its compressed bytes arrive.

    Decompressing and hashing run on a thread of their own, fed through a small
    bounded queue, so a download and its verification use two cores at once.
    """

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self._head: bytes | None = b""  # until the format is known from the first bytes
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self.error: CorruptArchive | None = None
        self.kind = "none"  # the compression, once the first bytes are seen

    def feed(self, data: bytes) -> None:
        if self._head is not None:
            self._head += data
            if len(self._head) < 8:
                return
            data, self._head = self._head, None
            kind = self.kind = detect(data)
            if kind != "none":
                self._queue = queue.Queue(maxsize=8)  # bounded: memory stays flat
                self._thread = threading.Thread(target=self._inflate, args=(PushDecompressor(kind),), daemon=True)
                self._thread.start()
        if self._queue is None:
            self.size += len(data)  # uncompressed: the diff_id is the blob digest itself
        else:
            self._queue.put(data)

    def _inflate(self, inflater: PushDecompressor) -> None:
        assert self._queue is not None
        while (data := self._queue.get()) is not None:
            if self.error is not None:
                continue  # keep draining so the downloader never blocks
            try:
                for piece in inflater.feed(data):
                    self.sha.update(piece)
                    self.size += len(piece)
            except CorruptArchive as exc:
                self.error = exc  # said after the digest check, which names the cause better
        if self.error is None:
            try:
                inflater.finish()
            except CorruptArchive as exc:
                self.error = exc

    def close(self) -> None:
        """Stop the verifier thread (after a failed download too)."""
        if self._queue is not None and self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def finish(self, blob_digest: Digest) -> Digest:
        if self._head is not None:  # fewer than 8 bytes in all
            self.size += len(self._head)
            self._head = None
        self.close()
        if self.error is not None:
            raise self.error
        if self._queue is None:
            return blob_digest
        return Digest("sha256", self.sha.hexdigest())
