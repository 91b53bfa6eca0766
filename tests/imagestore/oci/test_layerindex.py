"""The layer indexer reads what tarfile reads, from bytes fed in any pieces, and never raises out of feed."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest

from imagestore.oci.errors import CorruptArchive
from imagestore.oci.layerindex import MAX_METADATA_HEADER, TarIndexer, decode, encode, index_tar
from tests.builders import char_device, directory, link, sparse_file, tar_bytes


def _feed(data: bytes, step: int) -> TarIndexer:
    indexer = TarIndexer()
    for i in range(0, len(data), step):
        indexer.feed(data[i:i + step])
    return indexer


def _file(name: str, data: bytes, **attrs: int) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def _rootfs() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in [directory("./etc"), _file("./etc/os-release", b'ID=debian\nVERSION_ID="12"\n'),
                      _file("./usr/lib/big.so.1", os.urandom(70_000)), link("./bin/sh", "/bin/busybox"),
                      link("./etc/os-release.hard", "etc/os-release", hard=True), char_device("./dev/null", 1, 3),
                      _file("./var/.wh.gone", b""), _file("./opt/.wh..wh..opq", b""), _file("./.wh..wh.plnk", b""),
                      # a PAX path (> 100 bytes) and a uid past the ustar field
                      _file("home/u/" + "deep/" * 30 + "file.txt", b"hello", uid=3_000_000, gid=1000, mode=0o4755,
                            mtime=1_700_000_000)]:
            if isinstance(entry, tuple):
                tar.addfile(entry[0], io.BytesIO(entry[1]))
            else:
                tar.addfile(entry)
    return out.getvalue()


@pytest.mark.parametrize("step", [1, 511, 512, 4096, 1 << 20])
def test_entries_are_what_tarfile_reads_whatever_the_pieces(step: int) -> None:
    data = _rootfs()
    index = _feed(data, step).result()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        expected = {}
        for m in members:
            if m.isreg() and ".wh." not in m.name:
                f = tar.extractfile(m)
                assert f is not None
                expected[m.name.removeprefix("./")] = ("sha256:" + hashlib.sha256(f.read()).hexdigest(), m.size,
                                                       m.mode, m.uid, m.gid, int(m.mtime))
    files = {e.path: (e.digest, e.size, e.mode, e.uid, e.gid, e.mtime) for e in index.entries if e.type == "file"}
    assert files == expected
    by_path = {e.path: e for e in index.entries}
    assert by_path["bin/sh"].type == "symlink" and by_path["bin/sh"].link == "/bin/busybox"
    assert by_path["etc/os-release.hard"].type == "hardlink" and by_path["etc/os-release.hard"].link == "etc/os-release"
    assert by_path["dev/null"].type == "char" and by_path["etc"].type == "dir"
    assert by_path["var/gone"].type == "whiteout" and by_path["opt"].type == "opaque"
    assert not any(".wh." in e.path for e in index.entries)  # aufs metadata is not an entry
    assert index.files == {"etc/os-release": b'ID=debian\nVERSION_ID="12"\n'}  # kept for the package readers


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_in_gnu_and_ustar_formats(fmt: int) -> None:
    name = "p/" * 60 + "f"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        info = tarfile.TarInfo(name)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
        target = tarfile.TarInfo("l")
        target.type, target.linkname = tarfile.SYMTYPE, "/" + "t" * 150 if fmt == tarfile.GNU_FORMAT else "/t"
        tar.addfile(target)
    entries = index_tar(io.BytesIO(out.getvalue())).entries
    assert entries[0].path == name and entries[0].digest == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert entries[1].link == target.linkname


def test_sparse_file_counts_its_apparent_size() -> None:
    (entry,) = index_tar(io.BytesIO(sparse_file("holes.img", 1 << 30))).entries
    assert (entry.path, entry.type, entry.size, entry.digest) == ("holes.img", "file", 1 << 30, "")


@pytest.mark.parametrize("junk", [
    b'{"architecture": "amd64"}',  # a config in a load archive
    b"\x01" * 5000,
    b"",
])
def test_what_is_not_a_tar_ends_indexing_without_raising(junk: bytes) -> None:
    indexer = _feed(junk + b"\0" * 1024 if junk else b"", 100)
    with pytest.raises(CorruptArchive):
        indexer.result()


def test_truncated_tar_is_not_an_index() -> None:
    data = tar_bytes([("a", b"x" * 2000)])
    with pytest.raises(CorruptArchive, match="end-of-archive"):
        _feed(data[:1500], 512).result()


def test_escaping_names_and_oversized_metadata_are_refused() -> None:
    evil = tarfile.TarInfo("../../etc/passwd")
    evil.size = 0
    assert "contains '..'" in (_feed(tar_bytes([evil]), 512).failed or "")
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, MAX_METADATA_HEADER + 1
    indexer = _feed(header.tobuf(format=tarfile.USTAR_FORMAT), 512)
    assert "metadata header" in (indexer.failed or "")


def test_stored_form_round_trips() -> None:
    index = index_tar(io.BytesIO(_rootfs()))
    out = io.BytesIO()
    encode(index, out)
    out.seek(0)
    again = decode(out)
    assert again.entries == index.entries and again.files == index.files
    with pytest.raises(CorruptArchive):
        decode(io.BytesIO(b"not zstd"))
