"""Import of a 1 GiB random-content tarball, beside the floor ``cat file | gzip -1 | sha256sum``.

Prints wall time and peak RSS of each, and the ratio (target: import within 1.5x of
the floor, peak RSS under 150 MB). Run with ``make bench``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = int(os.environ.get("BENCH_SIZE", str(1 << 30)))


def make_tarball(path: Path) -> None:
    """A tar holding SIZE bytes of random content, in 64 MiB files."""
    chunk = 64 << 20
    with tarfile.open(path, "w") as tar:
        remaining, n = SIZE, 0
        while remaining > 0:
            size = min(chunk, remaining)
            info = tarfile.TarInfo(f"data/random-{n:03d}.bin")
            info.size = size
            with open("/dev/urandom", "rb") as random:
                tar.addfile(info, _Limited(random, size))
            remaining -= size
            n += 1


class _Limited:
    def __init__(self, f, size: int) -> None:  # type: ignore[no-untyped-def]
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command, from the kernel's own accounting."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed with status {status}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        work = Path(tmp)
        tarball = work / "random.tar"
        print(f"making a {SIZE / (1 << 30):.2f} GiB random tarball ...", flush=True)
        make_tarball(tarball)
        env = {**os.environ, "VAR_DIR": str(work / "var"), "DJANGO_SETTINGS_MODULE": "dashboard.settings",
               "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}"}
        env.pop("IMAGESTORE_ROOT", None)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run(["cat", str(tarball)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

        floor_wall, floor_rss = measure(["bash", "-c", f"cat {tarball} | gzip -1 | sha256sum"])
        ours_wall, ours_rss = measure([sys.executable, "manage.py", "import_image", str(tarball), "bench:1"], env)

        print(f"floor  cat | gzip -1 | sha256sum : {floor_wall:7.2f} s  peak RSS {floor_rss:6.1f} MB")
        print(f"ours   manage.py import_image    : {ours_wall:7.2f} s  peak RSS {ours_rss:6.1f} MB")
        ratio = ours_wall / floor_wall
        print(f"ratio (ours / floor): {ratio:.2f}x  (target <= 1.5x); peak RSS {ours_rss:.0f} MB (target < 150 MB)")


if __name__ == "__main__":
    main()
