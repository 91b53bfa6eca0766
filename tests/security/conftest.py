"""Shared by the security tests: a host directory that must stay untouched, and both
ways the filesystem layer resolves paths (openat2, and the walk older kernels get)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

Snapshot = dict[str, tuple[int, int, int, int, bytes | str | None]]


def snapshot(top: Path) -> Snapshot:
    """Mode, owner, mtime and content (or link target) of everything under ``top``, and ``top``."""
    out: Snapshot = {}
    for path in [top, *sorted(top.rglob("*"))]:
        st = os.lstat(path)
        content: bytes | str | None = None
        if path.is_symlink():
            content = os.readlink(path)
        elif path.is_file():
            content = path.read_bytes()
        out[str(path)] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, content)
    return out


class Host:
    """Files outside every root: a stand-in for /usr/bin/python3, /etc and the data folder."""

    def __init__(self, top: Path) -> None:
        self.top = top
        top.mkdir()
        self.python = top / "python3"
        self.python.write_bytes(b"\x7fELF the host's python")
        self.python.chmod(0o755)
        self.secret = top / "secret"
        self.secret.write_bytes(b"HOST SECRET\n")
        self.secret.chmod(0o600)
        self.dir = top / "etc"
        self.dir.mkdir(mode=0o755)
        (self.dir / "b").mkdir(mode=0o755)
        (self.dir / "passwd").write_bytes(b"HOST SECRET passwd\n")
        for path in (self.top, self.python, self.secret, self.dir, self.dir / "b", self.dir / "passwd"):
            os.utime(path, (1_000_000, 1_000_000), follow_symlinks=False)
        self.before = snapshot(top)

    def assert_untouched(self) -> None:
        assert snapshot(self.top) == self.before


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path / "host")


@pytest.fixture(params=["openat2", "walk"])
def resolution(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every test of the layer runs with openat2(RESOLVE_IN_ROOT) and with the O_NOFOLLOW walk."""
    from imagestore.oci import rootfs

    monkeypatch.setattr(rootfs, "openat2_available", False if request.param == "walk" else None)
    yield request.param
