"""Shared by the benchmarks: random tarballs and measuring one command's wall time and peak RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parent.parent


class _Limited:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data


def make_random_tarball(path: Path, size: int, file_size: int = 64 << 20) -> None:
    """A tar holding ``size`` bytes of random content, in files of ``file_size``."""
    with tarfile.open(path, "w") as tar, open("/dev/urandom", "rb") as random:
        remaining, n = size, 0
        while remaining > 0:
            chunk = min(file_size, remaining)
            info = tarfile.TarInfo(f"data/random-{n:03d}.bin")
            info.size = chunk
            tar.addfile(info, _Limited(random, chunk))  # type: ignore[arg-type]
            remaining -= chunk
            n += 1


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command, from the kernel's own accounting."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with status {status}")
    print(f"  ({os.path.basename(cmd[0])} {cmd[1] if len(cmd) > 1 else ''}: {wall:.2f} s wall, "
          f"{usage.ru_utime + usage.ru_stime:.2f} s CPU)", flush=True)
    return wall, usage.ru_maxrss / 1024


def django_env(work: Path) -> dict[str, str]:
    """A throw-away store and SQLite database for one benchmark run, migrated."""
    env = {**os.environ, "VAR_DIR": str(work / "var"), "DJANGO_SETTINGS_MODULE": "dashboard.settings",
           "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}"}
    env.pop("IMAGESTORE_ROOT", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return env


def manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]
