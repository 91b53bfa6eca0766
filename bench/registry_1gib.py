"""This dashboard as a registry: ``skopeo copy`` pushes a 1 GiB image of 4 gzip layers to its /v2/
(gunicorn as ``make run`` starts it) and pulls it back, beside the same two copies to and from
Debian's docker-registry, in the same run.

Target: both directions at most 1.2x docker-registry's wall time; peak RSS of every web process
under 200 MB. skopeo logs in to the dashboard with an API token (a password works too, at the cost of
its hash once per web process). Each is run ``BENCH_RUNS`` times (3), interleaved, each push into an empty store
(servers started afresh, skopeo with an empty blob-info cache); the medians are compared.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import ROOT, django_env, manage, measure  # noqa: E402
from pull_1gib import make_layer  # noqa: E402

from tests.integration.conftest import start_gunicorn  # noqa: E402
from tests.integration.registry import free_port, start_registry  # noqa: E402

SIZE = int(os.environ.get("BENCH_SIZE", str(1 << 30)))
LAYERS = 4
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
USER, PASSWORD = "bench", "bench-password-1"


def make_layout(work: Path) -> Path:
    """An OCI layout holding the image (what skopeo pushes from)."""
    layout = work / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layers = []
    for i in range(LAYERS):
        diff_id, digest, size = make_layer(work / f"layer{i}", SIZE // LAYERS)
        (work / f"layer{i}").rename(blobs / digest.split(":")[1])
        layers.append((diff_id, digest, size))
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [d for d, _, _ in layers]}}).encode()
    import hashlib

    def put(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (blobs / digest.split(":")[1]).write_bytes(data)
        return digest

    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s}
                   for _, d, s in layers],
    }).encode()
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest), "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "big"}}]}))
    return layout


def peak_rss_of_children(pid: int) -> float:
    """The largest VmHWM (peak RSS, MB) among gunicorn's master and its worker processes."""
    peak = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except FileNotFoundError:
            continue
    return peak


def main() -> None:
    skopeo = shutil.which("skopeo")
    if not skopeo:
        raise SystemExit("skopeo is needed (make bench installs it)")
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        work = Path(tmp)
        print(f"making a {SIZE / (1 << 30):.2f} GiB image of {LAYERS} gzip layers ...", flush=True)
        layout = make_layout(work)
        runs: dict[str, list[tuple[float, float]]] = {"registry push": [], "registry pull": [],
                                                      "ours push": [], "ours pull": []}
        web_rss: list[float] = []
        for n in range(RUNS):
            for kind in ("registry", "ours"):
                home = work / f"home-{kind}-{n}"  # skopeo's blob-info cache: empty for every copy
                home.mkdir()
                skopeo_env = {**os.environ, "HOME": str(home)}
                server = None
                if kind == "registry":
                    registry = start_registry(work / f"registry-{n}")
                    host, creds = registry.host, []
                else:
                    env = django_env(work / f"dash-{n}")
                    env.pop("WEB_CONCURRENCY", None)  # as `make run`: gunicorn.conf.py's default
                    # An API token as the password, as automation logs in (a password's deliberately slow
                    # hash, ~1-2 s on this box, would be paid by every token request of a fresh process).
                    key = subprocess.run(manage("shell", "-c", "from django.contrib.auth.models import User; "
                                                "from imagestore.services.tokens import create_token; "
                                                f"u = User.objects.create_superuser('{USER}', '', '{PASSWORD}'); "
                                                "print(create_token(u, name='bench')[1])"),
                                         cwd=ROOT, env=env, check=True, capture_output=True, text=True
                                         ).stdout.split()[-1]
                    port = free_port()
                    server, url = start_gunicorn(env, port, work / f"gunicorn-{n}.log")
                    host = url.split("://", 1)[1]
                    creds = ["--dest-creds", f"{USER}:{key}"]
                try:
                    target = f"docker://{host}/bench/big:1"
                    runs[f"{kind} push"].append(measure(
                        [skopeo, "copy", "-q", "--dest-tls-verify=false", *creds, f"oci:{layout}:big", target],
                        skopeo_env))
                    out = work / f"pulled-{kind}-{n}"
                    src_creds = ["--src-creds", creds[1]] if creds else []
                    runs[f"{kind} pull"].append(measure(
                        [skopeo, "copy", "-q", "--src-tls-verify=false", *src_creds, target, f"dir:{out}"],
                        skopeo_env))
                    shutil.rmtree(out)
                    if server is not None:
                        web_rss.append(peak_rss_of_children(server.pid))
                finally:
                    if server is not None:
                        server.terminate()
                        server.wait(30)
                        shutil.rmtree(work / f"dash-{n}", ignore_errors=True)
                    else:
                        registry.stop()
                        shutil.rmtree(work / f"registry-{n}", ignore_errors=True)
        med = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
        print(f"median of {RUNS} runs each (wall seconds), skopeo copy of {SIZE / (1 << 30):.2f} GiB:")
        print(f"{'':8}{'docker-registry':>18}{'this dashboard':>18}{'ratio':>9}")
        for direction in ("push", "pull"):
            ratio = med[f"ours {direction}"] / med[f"registry {direction}"]
            print(f"{direction:8}{med[f'registry {direction}']:16.2f} s{med[f'ours {direction}']:16.2f} s"
                  f"{ratio:8.2f}x   (target <= 1.2x)")
        print(f"peak RSS of the dashboard's web processes: {max(web_rss):.0f} MB (target < 200 MB)")


if __name__ == "__main__":
    main()
