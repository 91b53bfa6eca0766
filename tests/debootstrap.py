"""A real Debian root filesystem (``debootstrap --variant=minbase bookworm``), made once and kept
as a tarball under ``var/cache/`` so later runs reuse it (about 30 MB compressed)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "cache"
TARBALL = CACHE / "debootstrap-bookworm-minbase.tar.gz"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")


def bookworm_minbase() -> Path:
    """The tarball (a ``tar -C root .`` of the bootstrapped root), made on first use."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".debootstrap.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one maker across test processes
        if TARBALL.exists():
            return TARBALL
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is not installed (make test installs it)")
        with tempfile.TemporaryDirectory(prefix="debootstrap-", dir=CACHE) as tmp:
            root = Path(tmp) / "root"
            subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(root), MIRROR], check=True,
                           stdout=subprocess.DEVNULL)
            partial = Path(tmp) / "rootfs.tar.gz"
            subprocess.run(["tar", "--numeric-owner", "--xattrs", "-czf", str(partial), "-C", str(root), "."],
                           check=True)
            os.replace(partial, TARBALL)
    return TARBALL


if __name__ == "__main__":
    print(bookworm_minbase())
