"""Import of a 1 GiB random-content tarball, beside the floor ``cat file | gzip -1 | sha256sum``.

Prints wall time and peak RSS of each, and the ratio (target: import within 1.5x of
the floor, peak RSS under 150 MB). Run with ``make bench``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import django_env, make_random_tarball, manage, measure  # noqa: E402

SIZE = int(os.environ.get("BENCH_SIZE", str(1 << 30)))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        work = Path(tmp)
        tarball = work / "random.tar"
        print(f"making a {SIZE / (1 << 30):.2f} GiB random tarball ...", flush=True)
        make_random_tarball(tarball, SIZE)
        env = django_env(work)
        subprocess.run(["cat", str(tarball)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

        floor_wall, floor_rss = measure(["bash", "-c", f"cat {tarball} | gzip -1 | sha256sum"])
        ours_wall, ours_rss = measure(manage("import_image", str(tarball), "bench:1"), env)

        print(f"floor  cat | gzip -1 | sha256sum : {floor_wall:7.2f} s  peak RSS {floor_rss:6.1f} MB")
        print(f"ours   manage.py import_image    : {ours_wall:7.2f} s  peak RSS {ours_rss:6.1f} MB")
        ratio = ours_wall / floor_wall
        print(f"ratio (ours / floor): {ratio:.2f}x  (target <= 1.5x); peak RSS {ours_rss:.0f} MB (target < 150 MB)")


if __name__ == "__main__":
    main()
