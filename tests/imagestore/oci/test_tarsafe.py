"""Every tar entry that would escape the root is refused; real rootfs entries are kept."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from imagestore.oci.errors import CorruptArchive, UnsafeArchive
from imagestore.oci.layer import scan_tar, write_gzip_layer
from tests.builders import char_device, directory, link, simple_rootfs_tar, tar_bytes


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("/etc/passwd", b"x")], "absolute path"),
        ([("../escape", b"x")], "contains '..'"),
        ([("etc/../../escape", b"x")], "contains '..'"),
        ([link("evil", "/etc/passwd", hard=True)], "hard link .* absolute path"),
        ([link("evil", "../../etc/passwd", hard=True)], "contains '..'"),
        ([link("etc/evil", "../../outside")], "points outside the root"),
        ([link("evil", "..")], "points outside the root"),
    ],
)
def test_entries_escaping_the_root_are_refused(entries: list, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(UnsafeArchive, match=message):
        scan_tar(io.BytesIO(tar_bytes(entries)))


def test_absolute_symlinks_and_device_nodes_of_a_real_rootfs_are_kept() -> None:
    data = tar_bytes([
        directory("./bin"), link("./bin/sh", "/bin/busybox"), link("./lib", "usr/lib"),
        link("./etc/alternatives/x", "../../bin/sh"), char_device("./dev/null", 1, 3),
    ])
    assert scan_tar(io.BytesIO(data)) == 5


def test_oversized_metadata_header_is_refused_before_it_is_buffered() -> None:
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = 10 * 1024**3  # claims 10 GB in a tiny file
    raw = header.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 1024
    with pytest.raises(UnsafeArchive, match="metadata header claims"):
        scan_tar(io.BytesIO(raw))


def test_truncated_tar_is_an_error_not_a_shorter_layer() -> None:
    data = tar_bytes([("big", os.urandom(200_000)), ("after", b"x")])
    with pytest.raises(CorruptArchive, match="truncated|unexpected end"):
        scan_tar(io.BytesIO(data[:150_000]))


def test_tar_missing_its_end_marker_after_the_last_member_is_an_error() -> None:
    data = tar_bytes([("a", b"x" * 512)])
    # header (512) + data (512); cut the two zero blocks that end the archive
    with pytest.raises(CorruptArchive):
        scan_tar(io.BytesIO(data[:1024]))


def test_garbage_instead_of_a_header_is_an_error() -> None:
    data = tar_bytes([("a", b"x" * 512)])
    with pytest.raises(CorruptArchive, match="invalid tar header"):
        scan_tar(io.BytesIO(data[:1024] + b"garbage!" * 200))


def test_empty_input_is_not_a_tar() -> None:
    with pytest.raises(CorruptArchive, match="empty"):
        scan_tar(io.BytesIO(b""))


def test_layer_keeps_every_byte_and_hashes_the_uncompressed_tar() -> None:
    import gzip
    import hashlib

    data = simple_rootfs_tar()
    out = io.BytesIO()
    info = write_gzip_layer(io.BytesIO(data), out)
    assert str(info.diff_id) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert info.size == len(data)
    assert gzip.decompress(out.getvalue()) == data


def test_layer_size_limit_stops_a_compression_bomb() -> None:
    data = tar_bytes([("zeros", b"\0" * 5_000_000)])
    with pytest.raises(UnsafeArchive, match="larger than the limit"):
        write_gzip_layer(io.BytesIO(data), io.BytesIO(), max_size=1_000_000)
