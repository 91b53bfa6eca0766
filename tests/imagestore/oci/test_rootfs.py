"""Resolution inside a root with chroot semantics, on openat2 and on the O_NOFOLLOW walk,
and tar streams read through descriptors."""

from __future__ import annotations

import errno
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestore.oci import rootfs
from imagestore.oci.errors import UnsafeArchive
from imagestore.oci.rootfs import RootFS, chmod_at, clean_path, remove_at, tar_of


@pytest.fixture(params=["openat2", "walk"])
def resolution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(rootfs, "openat2_available", False if request.param == "walk" else None)
    yield request.param


@pytest.fixture
def root(tmp_path: Path, resolution: str) -> Path:
    top = tmp_path / "root"
    (top / "bin").mkdir(parents=True)
    (top / "bin" / "busybox").write_bytes(b"busybox")
    os.symlink("/bin/busybox", top / "bin" / "sh")
    os.symlink("../../../../../../..", top / "up")
    os.symlink("/", top / "slash")
    os.symlink("loop2", top / "loop1")
    os.symlink("loop1", top / "loop2")
    (top / "usr" / "lib").mkdir(parents=True)
    os.symlink("usr/lib", top / "lib")
    return top


def _where(fs: RootFS, rel: str, **kwargs: bool) -> str:
    fd = fs.open(rel, **kwargs)  # type: ignore[arg-type]
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


@pytest.mark.parametrize(("rel", "expected"), [
    ("bin/sh", "bin/busybox"),  # an absolute target means the root's own /bin/busybox
    ("up/bin/sh", "bin/busybox"),  # '..' stops at the root
    ("slash/slash/bin/../bin/sh", "bin/busybox"),
    ("lib", "usr/lib"),
    ("", ""),
])
def test_symlinks_resolve_inside_the_root(root: Path, rel: str, expected: str) -> None:
    with RootFS(root) as fs:
        assert _where(fs, rel) == str(root / expected).rstrip("/")


def test_a_final_symlink_is_opened_as_itself_when_not_followed(root: Path) -> None:
    with RootFS(root) as fs:
        fd = fs.open("bin/sh", follow_last=False)
        try:
            assert stat.S_ISLNK(os.fstat(fd).st_mode)
        finally:
            os.close(fd)


def test_loops_and_refused_links_are_errors(root: Path) -> None:
    with RootFS(root) as fs:
        with pytest.raises(OSError) as loop:
            fs.open("loop1")
        assert loop.value.errno == errno.ELOOP
        with pytest.raises(OSError) as refused:
            fs.open_dir("lib", follow=False)
        assert refused.value.errno in (errno.ELOOP, errno.EXDEV)


def test_missing_directories_are_made_inside_the_root(root: Path) -> None:
    with RootFS(root) as fs:
        os.close(fs.open_dir("slash/new/deeper", create=True))
    assert (root / "new" / "deeper").is_dir()


def test_read_file_is_bounded_and_regular_files_only(root: Path) -> None:
    os.mkfifo(root / "fifo")
    (root / "big").write_bytes(b"x" * 100)
    with RootFS(root) as fs:
        assert fs.read_file("bin/sh", 100) == b"busybox"
        with pytest.raises(ValueError, match="larger than 10 bytes"):
            fs.read_file("big", 10)
        with pytest.raises(ValueError, match="not a regular file"):
            fs.read_file("fifo", 10)  # and it did not hang


def test_chmod_at_leaves_a_symlink_and_its_target_alone(root: Path) -> None:
    (root / "bin" / "busybox").chmod(0o755)
    fd = os.open(root / "bin", os.O_PATH | os.O_DIRECTORY)
    try:
        chmod_at(fd, "sh", 0o4777)
        chmod_at(fd, "busybox", 0o700)
    finally:
        os.close(fd)
    assert stat.S_IMODE(os.stat(root / "bin" / "busybox").st_mode) == 0o700


def test_remove_at_refuses_names_that_are_not_one_entry(root: Path) -> None:
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        for name in ("", ".", "..", "a/b"):
            with pytest.raises(UnsafeArchive):
                remove_at(fd, name)
        assert remove_at(fd, "up") and not os.path.lexists(root / "up")
        assert remove_at(fd, "usr") and not (root / "usr").exists()
        assert not remove_at(fd, "usr")
    finally:
        os.close(fd)


def test_clean_path_collapses_dots_lexically() -> None:
    assert clean_path("/etc/../var/") == "var"
    assert clean_path("../../..") == ""
    assert clean_path("") == ""


def test_tar_of_keeps_links_devices_hard_links_and_streams_in_bounded_chunks(root: Path) -> None:
    (root / "big").write_bytes(os.urandom(3 << 20))
    os.link(root / "big", root / "big-again")
    os.mkfifo(root / "fifo")
    chunks = list(tar_of(root, "/"))
    assert max(len(c) for c in chunks) <= 1 << 20
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["./bin/sh"].issym() and members["./bin/sh"].linkname == "/bin/busybox"
        assert members["./big-again"].islnk() and members["./big-again"].linkname == "./big"
        assert members["./fifo"].isfifo()
        extracted = tar.extractfile("./big")
        assert extracted is not None and extracted.read() == (root / "big").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(b"".join(tar_of(root, "/bin/sh")))) as tar:
        assert [m.name for m in tar.getmembers()] == ["sh"]
