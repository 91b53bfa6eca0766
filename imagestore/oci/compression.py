"""Streaming decompression of whatever a person hands us: gzip, bzip2, xz, zstd or plain.

The format is recognised from the first bytes (magic numbers), as ``docker import``
does, so a ``.tar`` named ``.tgz`` still works.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, Protocol, cast

import zstandard
from isal import isal_zlib

from .errors import CorruptArchive

CHUNK_SIZE = 1 << 20
_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (
    zlib.error,
    cast(type[BaseException], isal_zlib.error),
    OSError,
    lzma.LZMAError,
    zstandard.ZstdError,
    EOFError,
)

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def detect(prefix: bytes) -> str:
    for magic, name in _MAGIC:
        if prefix.startswith(magic):
            return name
    return "none"


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _new_decompressor(kind: str) -> Any:
    if kind == "gzip":
        # ISA-L's inflate, a drop-in for zlib's, runs about twice as fast.
        return isal_zlib.decompressobj(31)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    if kind == "zstd":
        return zstandard.ZstdDecompressor().decompressobj()
    raise ValueError(kind)


class DecompressingReader:
    """A file-like reader giving the decompressed bytes of ``raw``, chunk by chunk.

    Concatenated members (``cat a.gz b.gz``, multi-stream bzip2) are read through, as
    gzip(1) does. A stream that ends before its compressed end marker is an error:
    a truncated upload must not become a silently shorter layer.
    """

    def __init__(self, raw: Readable, chunk_size: int = CHUNK_SIZE) -> None:
        self._raw = raw
        self._chunk_size = chunk_size
        self.compressed_bytes = 0
        first = self._read_raw()
        self.kind = detect(first)
        self._raw_eof = not first
        self._buffer = b""
        self._pending = first
        # None between members (and for plain input): the next bytes start a new one.
        self._decomp: Any = None

    def _read_raw(self, n: int | None = None) -> bytes:
        data = self._raw.read(self._chunk_size if n is None else n)
        self.compressed_bytes += len(data)
        return data

    def _next_input(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        if self._raw_eof:
            return b""
        data = self._read_raw()
        if not data:
            self._raw_eof = True
        return data

    def _decompress_step(self) -> bytes:
        """Decompress some input; b"" only at the true end of the stream."""
        while True:
            data = self._next_input()
            if not data:
                if self._decomp is not None:
                    raise CorruptArchive(f"unexpected end of {self.kind} stream: the file is truncated")
                return b""
            if self._decomp is None:
                if not data.strip(b"\x00"):
                    continue  # zero padding after the last member, as tape tools write
                self._decomp = _new_decompressor(self.kind)
            try:
                out = self._decomp.decompress(data)
            except _DECOMPRESS_ERRORS as exc:
                raise CorruptArchive(f"corrupt {self.kind} stream: {exc}") from exc
            if self._decomp.eof:
                self._pending = self._decomp.unused_data
                self._decomp = None
            if out:
                return out

    def read(self, n: int = -1) -> bytes:
        if self.kind == "none":
            if self._pending:
                data, self._pending = self._pending, b""
                if 0 <= n < len(data):
                    data, self._pending = data[:n], data[n:]
                return data
            return self._read_raw(None if n < 0 else n)
        while not self._buffer:
            out = self._decompress_step()
            if not out:
                return b""
            self._buffer = out
        if n < 0 or n >= len(self._buffer):
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data


def open_decompressed(raw: BinaryIO | Readable) -> DecompressingReader:
    return DecompressingReader(raw)


class PushDecompressor:
    """Decompression fed by the caller (as bytes arrive from a download), yielding
    output in bounded pieces so a highly compressed chunk never becomes one huge buffer."""

    def __init__(self, kind: str, max_piece: int = 4 * CHUNK_SIZE) -> None:
        self.kind = kind
        self.max_piece = max_piece
        self._decomp: Any = None

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._decomp is None:
                if not data.strip(b"\x00"):
                    return  # zero padding after the last member
                self._decomp = _new_decompressor(self.kind)
            try:
                if self.kind == "gzip":
                    out = self._decomp.decompress(data, self.max_piece)
                    yield out
                    while self._decomp.unconsumed_tail:
                        yield self._decomp.decompress(self._decomp.unconsumed_tail, self.max_piece)
                else:
                    yield self._decomp.decompress(data)
            except _DECOMPRESS_ERRORS as exc:
                raise CorruptArchive(f"corrupt {self.kind} stream: {exc}") from exc
            if self._decomp.eof:
                data = self._decomp.unused_data
                self._decomp = None
            else:
                data = b""

    def finish(self) -> None:
        if self._decomp is not None:
            raise CorruptArchive(f"unexpected end of {self.kind} stream: the file is truncated")
