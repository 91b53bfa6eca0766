"""Compression bombs made by the tests: a tar holding one file of zeros, compressed as one
stream (one member, one frame), so a decompressor that is not bounded per call expands it
whole. Built in 1 MiB steps, so making one costs no more memory than a chunk."""

from __future__ import annotations

import bz2
import functools
import hashlib
import json
import lzma
import tarfile
from collections.abc import Callable

import zstandard
from isal import isal_zlib

from tests.builders import tar_bytes

CODECS = ["gzip", "bzip2", "xz", "zstd"]
MiB = 1 << 20


def _compressor(kind: str) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    if kind == "gzip":
        c = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
        return c.compress, c.flush
    if kind == "bzip2":
        b = bz2.BZ2Compressor(1)
        return b.compress, b.flush
    if kind == "xz":
        x = lzma.LZMACompressor(preset=0)
        return x.compress, x.flush
    z = zstandard.ZstdCompressor(level=1).compressobj()
    return z.compress, z.flush


def bomb(kind: str, size: int) -> bytes:
    """A ``kind``-compressed tar whose one file is ``size`` bytes of zeros."""
    return _bomb(kind, size)[0]


@functools.cache
def _bomb(kind: str, size: int) -> tuple[bytes, str]:
    """The bomb and its diff_id (the sha256 of the tar it expands to)."""
    compress, flush = _compressor(kind)
    diff_id = hashlib.sha256()
    info = tarfile.TarInfo("zeros")
    info.size = size
    out = []
    zeros = bytes(MiB)
    for piece in (info.tobuf(format=tarfile.PAX_FORMAT), *([zeros] * (size // MiB)), bytes(1024)):
        diff_id.update(piece)
        out.append(compress(piece))
    out.append(flush())
    return b"".join(out), "sha256:" + diff_id.hexdigest()


def bomb_archive(kind: str, size: int) -> bytes:
    """A valid ``docker save`` archive whose one layer is the bomb: without a cap it loads."""
    layer, diff_id = _bomb(kind, size)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["bomb:1"], "Layers": ["layer.tar"]}]).encode()
    return tar_bytes([("layer.tar", layer), ("config.json", config), ("manifest.json", manifest)])
