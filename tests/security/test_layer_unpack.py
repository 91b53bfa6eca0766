"""Hostile layers (issue 10 findings 1, 2 and the sparse part of 3): unpacking never
changes, removes or links anything outside the root, and says clearly what it refused."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from imagestore.oci.errors import CorruptArchive, UnsafeArchive
from imagestore.oci.unpack import apply_layer
from tests.builders import directory, link, sparse_file, tar_bytes
from tests.security.conftest import Host, snapshot

pytestmark = pytest.mark.usefixtures("resolution")

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="owners are only set when unpacking as root")


def _dir(name: str, mode: int, uid: int = 0, mtime: int = 0) -> tarfile.TarInfo:
    info = directory(name)
    info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, mtime
    return info


def _apply(root: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]], **kwargs: object) -> int:
    return apply_layer(io.BytesIO(tar_bytes(entries)), root, **kwargs)  # type: ignore[arg-type]


def test_directory_replaced_by_a_symlink_does_not_chmod_the_host_file(tmp_path: Path, host: Host) -> None:
    """Finding 1: ``x/`` (04777) then ``x -> /usr/bin/python3``; the last pass over
    directories must not make the host's python setuid."""
    _apply(tmp_path / "root", [_dir("x", 0o4777), link("x", str(host.python))])
    host.assert_untouched()
    assert os.readlink(tmp_path / "root" / "x") == str(host.python)


def _parent_swapped_for_a_link(host: Host) -> list[tarfile.TarInfo | tuple[str, bytes]]:
    # a/b is set last; by then a is a symlink to the host's directory holding a b.
    return [_dir("a", 0o755), _dir("a/b", 0o700, uid=4242, mtime=0), link("a", str(host.dir))]


@as_root
def test_symlinked_parent_does_not_chown_the_host(tmp_path: Path, host: Host) -> None:
    _apply(tmp_path / "root", _parent_swapped_for_a_link(host), privileged=True)
    assert (host.dir / "b").stat().st_uid == 0
    host.assert_untouched()


def test_symlinked_parent_does_not_set_times_or_mode_on_the_host(tmp_path: Path, host: Host) -> None:
    _apply(tmp_path / "root", _parent_swapped_for_a_link(host), privileged=False)
    assert (host.dir / "b").stat().st_mtime == 1_000_000
    host.assert_untouched()


@pytest.mark.parametrize("name", [".wh...", ".wh.", ".wh.."])
def test_whiteout_naming_the_root_or_above_is_refused(tmp_path: Path, name: str) -> None:
    """Finding 2: ``.wh...`` removed the snapshot folder above the root, ``.wh.`` the root."""
    snapshots = tmp_path / "snapshots"
    lower = snapshots / "lower-of-a-running-container"
    lower.mkdir(parents=True)
    (lower / "keep").write_text("keep")
    root = snapshots / "root"
    _apply(root, [("kept", b"x")])
    before = snapshot(snapshots)
    with pytest.raises(UnsafeArchive, match="whiteout .* does not name an entry"):
        _apply(root, [(name, b"")])
    assert snapshot(snapshots) == before


def test_whiteout_still_removes_what_it_names(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _apply(root, [directory("etc"), ("etc/motd", b"hi"), ("etc/keep", b"k")])
    _apply(root, [("etc/.wh.motd", b"")])
    assert sorted(os.listdir(root / "etc")) == ["keep"]


def test_opaque_whiteout_through_a_symlinked_parent_stays_in_the_root(tmp_path: Path, host: Host) -> None:
    root = tmp_path / "root"
    _apply(root, [link("d", str(host.dir)), (f"{host.dir.relative_to('/')}/own", b"in the root")])
    _apply(root, [("d/.wh..wh..opq", b"")])
    host.assert_untouched()
    # chroot semantics: d means the root's own copy of that path, which was emptied
    assert os.listdir(root / host.dir.relative_to("/")) == []


def test_hard_link_to_a_host_file_through_a_symlinked_dir_is_refused(tmp_path: Path, host: Host) -> None:
    root = tmp_path / "root"
    with pytest.raises(CorruptArchive, match="hard link 'stolen' points to .* not in the root"):
        _apply(root, [link("d", str(host.top)), link("stolen", "d/secret", hard=True)])
    assert host.secret.stat().st_nlink == 1
    assert not (root / "stolen").exists()
    host.assert_untouched()


def test_hard_link_made_through_a_symlinked_parent_lands_inside_the_root(tmp_path: Path, host: Host) -> None:
    root = tmp_path / "root"
    _apply(root, [("f", b"x"), link("d", str(host.dir)), link("d/linked", "f", hard=True)])
    host.assert_untouched()
    inside = root / host.dir.relative_to("/") / "linked"
    assert inside.stat().st_ino == (root / "f").stat().st_ino


def test_hard_link_to_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CorruptArchive, match="not a file"):
        _apply(tmp_path / "root", [directory("etc"), link("etc2", "etc", hard=True)])


def test_file_written_through_a_symlinked_parent_lands_inside_the_root(tmp_path: Path, host: Host) -> None:
    root = tmp_path / "root"
    _apply(root, [link("d", str(host.dir)), ("d/evil", b"planted"), ("d/passwd", b"replaced")])
    host.assert_untouched()
    inside = root / host.dir.relative_to("/")
    assert (inside / "evil").read_bytes() == b"planted"
    assert (inside / "passwd").read_bytes() == b"replaced"


def test_file_replacing_a_symlink_replaces_the_link_not_its_target(tmp_path: Path, host: Host) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(host.secret, root / "x")  # a lower layer's link, seen from the host
    _apply(root, [("x", b"new")])
    host.assert_untouched()
    assert (root / "x").read_bytes() == b"new" and not (root / "x").is_symlink()


def test_sparse_bomb_is_refused_at_the_layer_limit_and_leaves_nothing(tmp_path: Path) -> None:
    """Sparse entries count at their apparent size: a 10 KB tar can't write 512 MiB."""
    root = tmp_path / "root"
    data = sparse_file("bomb", 512 << 20)
    assert len(data) < 16 << 10
    with pytest.raises(UnsafeArchive, match=f"limit of {64 << 20} bytes"):
        apply_layer(io.BytesIO(data), root, max_bytes=64 << 20)
    assert os.listdir(root) == []


def test_sparse_file_within_the_limit_unpacks_at_its_apparent_size(tmp_path: Path) -> None:
    root = tmp_path / "root"
    apply_layer(io.BytesIO(sparse_file("small", 1 << 20)), root, max_bytes=2 << 20)
    assert (root / "small").stat().st_size == 1 << 20
