"""Pull of a 1 GiB image (4 gzip layers) from a loopback docker-registry, beside
``skopeo copy docker://... dir:`` of the same image and the floor: ``curl`` of each blob
piped to ``sha256sum``, all in the same run.

Target: at most 0.7x skopeo's wall time; peak RSS under 150 MB; indexing the layers (which the
pull does in the same pass that verifies them) at most 15% more wall time than the same pull with
``IMAGESTORE_INDEX_LAYERS=false``. Each is run ``BENCH_RUNS`` times (3), interleaved, each pull
into a fresh store; the medians are compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import ROOT, django_env, manage, measure  # noqa: E402

from tests.integration.registry import start_registry  # noqa: E402

SIZE = int(os.environ.get("BENCH_SIZE", str(1 << 30)))
LAYERS = 4
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def make_layer(path: Path, size: int) -> tuple[str, str, int]:
    """A gzip layer of random content: (diff_id, digest, compressed size)."""
    import io
    import tarfile

    plain, packed = hashlib.sha256(), hashlib.sha256()
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    with open(path, "wb") as out, open("/dev/urandom", "rb") as random:
        def emit(data: bytes) -> None:
            plain.update(data)
            packed_data = compressor.compress(data)
            packed.update(packed_data)
            out.write(packed_data)

        info = tarfile.TarInfo("data/random.bin")
        info.size = size
        emit(info.tobuf(format=tarfile.USTAR_FORMAT))
        left = size
        while left:
            chunk = random.read(min(1 << 20, left))
            emit(chunk)
            left -= len(chunk)
        emit(b"\0" * (-size % 512) + b"\0" * 1024)
        tail = compressor.flush()
        packed.update(tail)
        out.write(tail)
    del io
    return "sha256:" + plain.hexdigest(), "sha256:" + packed.hexdigest(), path.stat().st_size


def main() -> None:
    skopeo, curl = shutil.which("skopeo"), shutil.which("curl")
    if not skopeo or not curl:
        raise SystemExit("skopeo and curl are needed (make bench installs skopeo)")
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp:
        work = Path(tmp)
        registry = start_registry(work / "registry")
        try:
            print(f"making a {SIZE / (1 << 30):.2f} GiB image of {LAYERS} gzip layers ...", flush=True)
            layers = [make_layer(work / f"layer{i}.tar.gz", SIZE // LAYERS) for i in range(LAYERS)]
            config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                                 "rootfs": {"type": "layers", "diff_ids": [d for d, _, _ in layers]}}).encode()
            (work / "config.json").write_bytes(config)
            (work / "manifest.json").write_text(json.dumps([{
                "Config": "config.json", "RepoTags": [f"{registry.host}/bench/big:1"],
                "Layers": [f"layer{i}.tar.gz" for i in range(LAYERS)]}]))
            subprocess.run(["tar", "-cf", str(work / "image.tar"), "-C", str(work), "manifest.json", "config.json",
                            *[f"layer{i}.tar.gz" for i in range(LAYERS)]], check=True)
            env = django_env(work)
            reference = f"{registry.host}/bench/big:1"
            for step in (["load_images", str(work / "image.tar")], ["shell", "-c",
                         f"from imagestore.services.push import push_image; push_image('{reference}')"]):
                subprocess.run(manage(*step), cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            subprocess.run(manage("shell", "-c", "from imagestore.services.remove import remove_image; "
                                  f"remove_image('{reference}', force=True)"),
                           cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            for i in range(LAYERS):
                (work / f"layer{i}.tar.gz").unlink()
            (work / "image.tar").unlink()

            urls = " ".join(f"{registry.url}/v2/bench/big/blobs/{digest}" for _, digest, _ in layers)
            runs: dict[str, list[tuple[float, float]]] = {"floor": [], "skopeo": [], "ours": [], "unindexed": []}
            for n in range(RUNS):
                runs["floor"].append(measure(["bash", "-c", f"for u in {urls}; do curl -sf $u | sha256sum; done"]))
                target = work / f"skopeo-dir-{n}"
                runs["skopeo"].append(measure([skopeo, "copy", "-q", "--src-tls-verify=false",
                                               f"docker://{reference}", f"dir:{target}"]))
                shutil.rmtree(target)
                for kind, flag in (("ours", "true"), ("unindexed", "false")):
                    fresh = django_env(work / f"{kind}-{n}")
                    runs[kind].append(measure(manage("pull_image", reference),
                                              {**fresh, "IMAGESTORE_INDEX_LAYERS": flag}))
                    shutil.rmtree(work / f"{kind}-{n}")
        finally:
            registry.stop()
        med = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
        rss = {k: max(r for _, r in v) for k, v in runs.items()}
        print(f"median of {RUNS} runs each (wall seconds; peak RSS of the worst run):")
        print(f"floor  curl | sha256sum (per blob)       : {med['floor']:7.2f} s  peak RSS {rss['floor']:6.1f} MB")
        print(f"skopeo copy docker:// -> dir:            : {med['skopeo']:7.2f} s  peak RSS {rss['skopeo']:6.1f} MB")
        print(f"ours   pull_image, layers indexed        : {med['ours']:7.2f} s  peak RSS {rss['ours']:6.1f} MB")
        print(f"ours   pull_image, IMAGESTORE_INDEX_LAYERS=false: {med['unindexed']:7.2f} s  "
              f"peak RSS {rss['unindexed']:6.1f} MB")
        print(f"ratio (ours / skopeo): {med['ours'] / med['skopeo']:.2f}x (target <= 0.7x); "
              f"unindexed / skopeo: {med['unindexed'] / med['skopeo']:.2f}x; "
              f"ours / floor: {med['ours'] / med['floor']:.2f}x; peak RSS {rss['ours']:.0f} MB (target < 150 MB)")
        print(f"indexing overhead: {100 * (med['ours'] / med['unindexed'] - 1):+.1f}% wall time (target <= 15%)")


if __name__ == "__main__":
    main()
