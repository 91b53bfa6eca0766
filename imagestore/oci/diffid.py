"""The diff_id of a layer (sha256 of its uncompressed tar) computed while its bytes pass by.

Used wherever a layer arrives compressed (a pull, a load): decompressing and hashing run
on a thread of their own, fed through a small bounded queue, so receiving the bytes and
verifying them use two cores at once and memory stays flat.
"""

from __future__ import annotations

import hashlib
import queue
import threading

from .compression import CHUNK_SIZE, DEFAULT_MAX_OUTPUT, DecompressingReader, detect
from .digest import Digest
from .errors import CorruptArchive, SizeLimitExceeded, UnsafeArchive
from .layerindex import TarIndexer


class _QueueSource:
    """The compressed bytes as the verifier thread reads them: what ``feed`` queued, in order."""

    def __init__(self, chunks: queue.Queue[bytes | None]) -> None:
        self._chunks = chunks
        self._left = b""
        self.ended = False

    def read(self, n: int = -1) -> bytes:
        if not self._left and not self.ended:
            data = self._chunks.get()
            if data is None:
                self.ended = True
            else:
                self._left = data
        if n < 0 or n >= len(self._left):
            data, self._left = self._left, b""
        else:
            data, self._left = self._left[:n], self._left[n:]
        return data


class DiffIdHasher:
    """Hashes the uncompressed bytes of a layer as its compressed bytes arrive.

    Decompressing and hashing run on a thread of their own, fed through a small
    bounded queue, so a download and its verification use two cores at once. More than
    ``max_output`` uncompressed bytes is a SizeLimitExceeded (``error`` says so as soon as
    it is known, so a caller can stop early).

    With an ``indexer``, the same uncompressed bytes are handed to it as they are hashed, so
    the layer is indexed in the one pass that verifies it. It runs on a third thread (its own
    sha256 of every file would otherwise double the verifier's work): on two cores a pull then
    takes the index's time from the idle core, not from the download.
    """

    def __init__(self, max_output: int = DEFAULT_MAX_OUTPUT, indexer: TarIndexer | None = None) -> None:
        self.indexer = indexer
        self._index_queue: queue.Queue[bytes | None] | None = None
        self._index_thread: threading.Thread | None = None
        if indexer is not None:
            self._index_queue = queue.Queue(maxsize=8)
            self._index_thread = threading.Thread(target=self._index, args=(indexer, self._index_queue),
                                                  daemon=True)
            self._index_thread.start()
        self.sha = hashlib.sha256()
        self.size = 0
        self.max_output = max_output
        self._head: bytes | None = b""  # until the format is known from the first bytes
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self.error: CorruptArchive | UnsafeArchive | None = None
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
                self._thread = threading.Thread(target=self._inflate, args=(self._queue,), daemon=True)
                self._thread.start()
        if self._queue is None:
            self.size += len(data)  # uncompressed: the diff_id is the blob digest itself
            self._to_index(data)
        else:
            self._queue.put(data)

    def _inflate(self, chunks: queue.Queue[bytes | None]) -> None:
        source = _QueueSource(chunks)
        try:
            reader = DecompressingReader(source, max_output=self.max_output)
            index = self._index_queue
            while piece := reader.read(CHUNK_SIZE):
                self.sha.update(piece)
                self.size += len(piece)
                if index is not None:
                    index.put(piece)
        except (CorruptArchive, UnsafeArchive) as exc:
            self.error = exc  # said after the digest check, which names the cause better
        while not source.ended:  # keep draining so the sender never blocks
            source.read()

    @staticmethod
    def _index(indexer: TarIndexer, pieces: queue.Queue[bytes | None]) -> None:
        while (piece := pieces.get()) is not None:
            try:
                indexer.feed(piece)
            except Exception as exc:  # noqa: BLE001 - never leave the senders blocked on a full queue
                indexer.failed = f"indexing failed: {exc.__class__.__name__}: {exc}"

    def _to_index(self, data: bytes) -> None:
        if self._index_queue is not None and self._index_thread is not None:
            self._index_queue.put(data)

    def _end_indexing(self) -> None:
        """Let the index thread take what is queued and stop (the indexer is then complete)."""
        if self._index_queue is not None and self._index_thread is not None:
            self._index_queue.put(None)
            self._index_thread.join()
            self._index_thread = None

    @property
    def over_limit(self) -> bool:
        """The uncompressed bytes already went past ``max_output``: no need to read on."""
        return isinstance(self.error, SizeLimitExceeded)

    def close(self) -> None:
        """Stop the verifier thread (after a failed download too)."""
        if self._queue is not None and self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._end_indexing()

    def finish(self, blob_digest: Digest) -> Digest:
        if self._head is not None:  # fewer than 8 bytes in all
            self.size += len(self._head)
            self._to_index(self._head)
            self._head = None
        self.close()
        if self.error is not None:
            raise self.error
        if self._queue is None:
            return blob_digest
        return Digest("sha256", self.sha.hexdigest())
