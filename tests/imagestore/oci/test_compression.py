from __future__ import annotations

import gzip
import io
import os

import pytest

from imagestore.oci.compression import detect, open_decompressed
from imagestore.oci.errors import CorruptArchive, SizeLimitExceeded
from tests.builders import COMPRESSORS


def _read_all(reader) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(iter(lambda: reader.read(65536), b""))


@pytest.mark.parametrize("kind", ["tar", "gzip", "bzip2", "xz", "zstd"])
def test_each_format_is_recognised_and_read_back(kind: str) -> None:
    data = os.urandom(300_000) + b"z" * 2_000_000
    reader = open_decompressed(io.BytesIO(COMPRESSORS[kind](data)))
    assert reader.kind == ("none" if kind == "tar" else kind)
    assert _read_all(reader) == data


def test_concatenated_gzip_members_are_read_through() -> None:
    reader = open_decompressed(io.BytesIO(gzip.compress(b"first ") + gzip.compress(b"second") + b"\0" * 512))
    assert _read_all(reader) == b"first second"


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zstd"])
def test_truncated_compressed_stream_is_an_error(kind: str) -> None:
    blob = COMPRESSORS[kind](os.urandom(500_000))
    with pytest.raises(CorruptArchive, match="truncated|corrupt"):
        _read_all(open_decompressed(io.BytesIO(blob[: len(blob) // 2])))


def test_corrupt_gzip_is_an_error() -> None:
    blob = bytearray(gzip.compress(os.urandom(100_000)))
    blob[5000] ^= 0xFF
    with pytest.raises(CorruptArchive):
        _read_all(open_decompressed(io.BytesIO(bytes(blob))))


def test_detect_by_magic_not_by_name() -> None:
    assert detect(b"\x1f\x8b\x08") == "gzip"
    assert detect(b"BZh9") == "bzip2"
    assert detect(b"\xfd7zXZ\x00\x00") == "xz"
    assert detect(b"\x28\xb5\x2f\xfd") == "zstd"
    assert detect(b"./etc") == "none"


@pytest.mark.parametrize("kind", ["tar", "gzip", "bzip2", "xz", "zstd"])
def test_output_past_the_cap_is_a_typed_error_naming_it(kind: str) -> None:
    data = b"z" * (3 << 20)
    assert _read_all(open_decompressed(io.BytesIO(COMPRESSORS[kind](data)), max_output=len(data))) == data
    with pytest.raises(SizeLimitExceeded, match="decompresses to more than the limit of 2 MiB") as caught:
        _read_all(open_decompressed(io.BytesIO(COMPRESSORS[kind](data)), max_output=2 << 20))
    assert caught.value.limit == 2 << 20
