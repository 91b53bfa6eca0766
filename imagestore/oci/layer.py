"""Reading a layer tar once while it streams: validate its entries, hash it, compress it.

One pass over the bytes gives everything a layer needs: the diff_id (sha256 of
the uncompressed tar), the gzip blob written to a sink (whose writer hashes it
into the blob digest), and the uncompressed size. Nothing is held in memory
beyond a couple of chunks.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from isal import isal_zlib

from .compression import CHUNK_SIZE, Readable
from .digest import Digest
from .errors import CorruptArchive, SizeLimitExceeded, human_size
from .layerindex import TarIndexer
from .tarsafe import check_member, open_tar_stream

BLOCK = 512


class Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class LayerInfo:
    diff_id: Digest
    size: int  # uncompressed bytes
    entries: int


class _Tee:
    """Passes reads through, handing each chunk to ``consume`` and remembering the tail."""

    def __init__(self, src: Readable, consume: Callable[[bytes], None]) -> None:
        self._src = src
        self._consume = consume
        self.position = 0
        self._recent: deque[tuple[int, bytes]] = deque(maxlen=3)

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        if data:
            self._recent.append((self.position, data))
            self.position += len(data)
            self._consume(data)
        return data

    def block_at(self, offset: int) -> bytes:
        """The bytes read at [offset, offset+512), from the recent chunks (may be short)."""
        out = b""
        for start, chunk in self._recent:
            end = start + len(chunk)
            lo, hi = max(offset, start), min(offset + BLOCK, end)
            if lo < hi:
                out += chunk[lo - start:hi - start]
        return out


def scan_tar(
    stream: Readable,
    on_member: Callable[[tarfile.TarInfo, str], None] | None = None,
    *,
    tee: _Tee | None = None,
) -> int:
    """Check every entry of a tar stream, reading it to its end-of-archive marker.

    Returns the number of entries. Raises UnsafeArchive for an entry that would
    escape the root and CorruptArchive for a malformed or truncated archive
    (tarfile alone would take a cut-off archive for a complete one).
    """
    src = tee or _Tee(stream, lambda _data: None)
    entries = 0
    with open_tar_stream(src) as tar:
        for info in tar:
            name = check_member(info)
            entries += 1
            if on_member is not None:
                on_member(info, name)
            # Stream mode keeps every TarInfo; a root filesystem has 100k of them.
            tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps every TarInfo otherwise
        end_offset = tar.offset
    marker = src.block_at(end_offset)
    if len(marker) < BLOCK:
        raise CorruptArchive("unexpected end of tar archive: the file is truncated")
    if marker.strip(b"\x00"):
        raise CorruptArchive(f"invalid tar header at offset {end_offset}")
    return entries


def write_gzip_layer(
    tar_stream: Readable,
    sink: Writable,
    *,
    level: int = 1,
    max_size: int | None = None,
    indexer: TarIndexer | None = None,
) -> LayerInfo:
    """Validate ``tar_stream`` and write it gzip-compressed to ``sink`` in one pass.

    Every byte of the input is kept (including padding after the end marker), so
    the diff_id is the sha256 of exactly the tar that was given, as Docker computes it.
    With an ``indexer``, the same bytes are indexed on the way (imagestore.oci.layerindex).
    """
    hasher = hashlib.sha256()
    # ISA-L's deflate (levels 0-3) writes ordinary gzip an order of magnitude faster than zlib.
    compressor = isal_zlib.compressobj(min(max(level, 0), 3), isal_zlib.DEFLATED, 31)
    total = 0

    def consume(chunk: bytes) -> None:
        nonlocal total
        total += len(chunk)
        if max_size is not None and total > max_size:
            raise SizeLimitExceeded(f"the layer is larger than the limit of {human_size(max_size)}", max_size)
        hasher.update(chunk)
        if indexer is not None:
            indexer.feed(chunk)
        out = compressor.compress(chunk)
        if out:
            sink.write(out)

    apparent = 0

    def count_apparent(info: tarfile.TarInfo, _name: str) -> None:
        # A sparse entry is a few KB in the tar and its full apparent size once unpacked.
        nonlocal apparent
        if max_size is not None and info.isreg():
            apparent += info.size
            if apparent > max_size:
                raise SizeLimitExceeded(f"the layer is larger than the limit of {human_size(max_size)} once "
                                        "unpacked (sparse files count at their apparent size)", max_size)

    tee = _Tee(tar_stream, consume)
    entries = scan_tar(tee, count_apparent, tee=tee)
    while tee.read(CHUNK_SIZE):
        pass
    sink.write(compressor.flush())
    return LayerInfo(Digest("sha256", hasher.hexdigest()), total, entries)
