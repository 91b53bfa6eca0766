"""Honest layers still unpack as before: absolute symlinks, device nodes, hard links,
modes and times, whiteouts and opaque directories, on openat2 and on the walk."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestore.oci import rootfs
from imagestore.oci.unpack import apply_layer
from tests.builders import busybox_rootfs, directory, link, simple_rootfs_tar, tar_bytes, tar_directory


@pytest.fixture(params=["openat2", "walk"], autouse=True)
def resolution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(rootfs, "openat2_available", False if request.param == "walk" else None)
    yield request.param


def test_honest_root_with_absolute_symlinks_and_device_nodes_unpacks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert apply_layer(io.BytesIO(simple_rootfs_tar("hi")), root) == 10
    assert os.readlink(root / "bin" / "sh") == "/bin/busybox"
    assert os.readlink(root / "bin" / "ls") == "busybox"
    assert os.stat(root / "etc" / "hostname.bak").st_ino == os.stat(root / "etc" / "hostname").st_ino
    if os.geteuid() == 0:
        st = os.lstat(root / "dev" / "null")
        assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3


def test_real_busybox_root_round_trips_modes_times_and_links(tmp_path: Path) -> None:
    source = busybox_rootfs(tmp_path / "source")
    os.utime(source / "etc", (1_600_000_000, 1_600_000_000))
    root = tmp_path / "root"
    apply_layer(io.BytesIO(tar_directory(source, "tar")), root)
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777
    assert os.stat(root / "etc").st_mtime == 1_600_000_000
    assert os.readlink(root / "usr" / "bin" / "env") == "/bin/busybox"
    assert (root / "bin" / "busybox").read_bytes() == (source / "bin" / "busybox").read_bytes()
    assert os.stat(root / "etc" / "passwd").st_nlink == 2


def test_setuid_file_keeps_its_bits_after_its_owner_is_set(tmp_path: Path) -> None:
    info = tarfile.TarInfo("su")
    info.mode, info.size, info.uid = 0o4755, 2, 0
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.addfile(info, io.BytesIO(b"su"))
    apply_layer(io.BytesIO(data.getvalue()), tmp_path / "root")
    assert stat.S_IMODE(os.stat(tmp_path / "root" / "su").st_mode) == 0o4755


def test_layers_on_top_replace_whiteout_and_empty_opaque_directories(tmp_path: Path) -> None:
    root = tmp_path / "root"
    apply_layer(io.BytesIO(tar_bytes([directory("a"), ("a/one", b"1"), ("a/two", b"2"), directory("b"),
                                      ("b/x", b"x"), ("c", b"file")])), root)
    apply_layer(io.BytesIO(tar_bytes([("a/.wh.one", b""), ("b/.wh..wh..opq", b""), ("b/y", b"y"),
                                      directory("c"), ("c/inside", b"i"), link("d", "/a")])), root)
    assert sorted(os.listdir(root / "a")) == ["two"]
    assert sorted(os.listdir(root / "b")) == ["y"]
    assert (root / "c" / "inside").read_bytes() == b"i"
    # a layer's file written through an absolute link lands in the root's own /a
    apply_layer(io.BytesIO(tar_bytes([("d/three", b"3")])), root)
    assert (root / "a" / "three").read_bytes() == b"3"


def test_copy_into_a_subdirectory_resolves_links_against_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    apply_layer(io.BytesIO(tar_bytes([directory("etc"), directory("tmp")])), root)
    apply_layer(io.BytesIO(tar_bytes([link("conf", "/etc"), ("conf/motd", b"hi"), ("f", b"f"),
                                      link("g", "f", hard=True)])), root, at="/tmp")
    assert (root / "etc" / "motd").read_bytes() == b"hi"
    assert os.stat(root / "tmp" / "g").st_ino == os.stat(root / "tmp" / "f").st_ino
