"""Pull of a 1 GiB image (4 gzip layers) from a loopback docker-registry, beside
``skopeo copy docker://... dir:`` of the same image and the floor: ``curl`` of each blob
piped to ``sha256sum``, all in the same run.

Target: at most 0.7x skopeo's wall time; peak RSS under 150 MB. Prints the ratios.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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
            floor = measure(["bash", "-c", f"for u in {urls}; do curl -sf $u | sha256sum; done"])
            peer = measure([skopeo, "copy", "-q", "--src-tls-verify=false", f"docker://{reference}",
                            f"dir:{work / 'skopeo-dir'}"])
            ours = measure(manage("pull_image", reference), env)
        finally:
            registry.stop()
        print(f"floor  curl | sha256sum (per blob)   : {floor[0]:7.2f} s  peak RSS {floor[1]:6.1f} MB")
        print(f"skopeo copy docker:// -> dir:        : {peer[0]:7.2f} s  peak RSS {peer[1]:6.1f} MB")
        print(f"ours   manage.py pull_image          : {ours[0]:7.2f} s  peak RSS {ours[1]:6.1f} MB")
        print(f"ratio (ours / skopeo): {ours[0] / peer[0]:.2f}x (target <= 0.7x); "
              f"ours / floor: {ours[0] / floor[0]:.2f}x; peak RSS {ours[1]:.0f} MB (target < 150 MB)")


if __name__ == "__main__":
    main()
