"""Save and load of a 1 GiB image, beside ``skopeo copy`` of the same image between ``oci:``
and ``docker-archive:`` in the same run.

Targets: each at most 0.8x skopeo's wall time; peak RSS under 150 MB. Prints the ratios.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, django_env, make_random_tarball, manage, measure  # noqa: E402

SIZE = int(os.environ.get("BENCH_SIZE", str(1 << 30)))
LAYOUT_SCRIPT = (
    "import django, sys; django.setup(); from pathlib import Path; "
    "from imagestore.services.images import resolve_image; from imagestore.services.layout import write_oci_layout; "
    "write_oci_layout([(resolve_image('bench:1'), 'bench')], Path(sys.argv[1]))"
)


def main() -> None:
    skopeo = shutil.which("skopeo")
    if not skopeo:
        raise SystemExit("skopeo is not installed (make bench installs it)")
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        work = Path(tmp)
        tarball = work / "random.tar"
        print(f"making a {SIZE / (1 << 30):.2f} GiB image ...", flush=True)
        make_random_tarball(tarball, SIZE, file_size=SIZE // 4)
        env = django_env(work)
        subprocess.run(manage("import_image", str(tarball), "bench:1"), cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        tarball.unlink()
        layout = work / "layout"
        subprocess.run([sys.executable, "-c", LAYOUT_SCRIPT, str(layout)], cwd=ROOT, env=env, check=True)

        ours_archive, peer_archive = work / "ours.tar", work / "skopeo.tar"
        peer_save = measure([skopeo, "copy", "-q", f"oci:{layout}:bench", f"docker-archive:{peer_archive}:bench:1"])
        ours_save = measure(manage("save_images", "-o", str(ours_archive), "bench:1"), env)

        subprocess.run([sys.executable, "-c", "import django; django.setup(); "
                        "from imagestore.services.remove import remove_image; remove_image('bench:1', force=True)"],
                       cwd=ROOT, env=env, check=True)
        peer_load = measure([skopeo, "copy", "-q", f"docker-archive:{ours_archive}", f"oci:{work / 'loaded'}:bench"])
        ours_load = measure(manage("load_images", str(ours_archive)), env)

        for label, (wall, rss) in [("skopeo copy oci: -> docker-archive:", peer_save),
                                   ("ours   manage.py save_images     ", ours_save),
                                   ("skopeo copy docker-archive: -> oci:", peer_load),
                                   ("ours   manage.py load_images     ", ours_load)]:
            print(f"{label}: {wall:7.2f} s  peak RSS {rss:6.1f} MB")
        print(f"save ratio (ours / skopeo): {ours_save[0] / peer_save[0]:.2f}x (target <= 0.8x); "
              f"peak RSS {ours_save[1]:.0f} MB (target < 150 MB)")
        print(f"load ratio (ours / skopeo): {ours_load[0] / peer_load[0]:.2f}x (target <= 0.8x); "
              f"peak RSS {ours_load[1]:.0f} MB (target < 150 MB)")


if __name__ == "__main__":
    main()
