"""``docker run --rm IMAGE true`` against this engine (the real docker CLI, gunicorn started as
`make run` starts it, runc under our supervisor) beside ``podman run --rm IMAGE true`` (Debian's
podman, same runc) on the same busybox image, already present in both. Median of BENCH_RUNS
runs each, alternated (after one warm-up), then the ratio (target: at most podman's time, ratio <= 1).

podman here runs as root with ``--cgroup-manager=cgroupfs`` and a containers.conf holding
``[containers]`` / ``default_ulimits = []`` (raising nproc is not permitted on these machines),
its storage in the run's temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, django_env, manage  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "9"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def busybox_tar(work: Path) -> Path:
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        raise SystemExit("busybox-static is needed (make system-deps)")
    root = work / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in ("sh", "true", "echo"):
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    archive = work / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(root, arcname=".")
    return archive


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.decode()[-2000:]}")
    return elapsed


def medians(ours: tuple[list[str], dict[str, str]], theirs: tuple[list[str], dict[str, str]]) -> tuple[float, float]:
    """Runs alternated, so that a busy moment of the machine weighs on both alike."""
    timed(*ours)  # warm-up: page cache, first imports
    timed(*theirs)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(RUNS):
        times[0].append(timed(*ours))
        times[1].append(timed(*theirs))
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    docker, podman = shutil.which("docker"), shutil.which("podman")
    if docker is None or podman is None:
        raise SystemExit("run_rm needs the docker CLI and podman (make system-deps installs podman)")
    work = Path(tempfile.mkdtemp(prefix="bench-run-rm-"))
    server = None
    try:
        archive = busybox_tar(work)
        env = django_env(work)
        env["DJANGO_SUPERUSER_PASSWORD"] = "bench-password-1"
        env["DJANGO_SUPERUSER_USERNAME"] = "bench"
        subprocess.run(manage("ensure_admin"), cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        token = subprocess.run(manage("create_token", "bench"), cwd=ROOT, env=env, check=True,
                               capture_output=True, text=True).stdout.strip()
        subprocess.run(manage("import_image", str(archive), "bench:latest"), cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        port = free_port()
        env["PORT"] = str(port)
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "scripts/gunicorn.conf.py", "dashboard.wsgi"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/docker/_ping", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.2)
        config = work / "docker-config"
        config.mkdir()
        (config / "config.json").write_text(json.dumps({"HttpHeaders": {"Authorization": f"Token {token}"}}))
        docker_env = {**os.environ, "DOCKER_CONFIG": str(config), "DOCKER_HOST": f"tcp://127.0.0.1:{port}/docker"}

        conf = work / "containers.conf"
        conf.write_text("[containers]\ndefault_ulimits = []\n")
        podman_env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        podman_cmd = [podman, "--cgroup-manager=cgroupfs", "--root", str(work / "podman-root"),
                      "--runroot", str(work / "podman-run")]
        subprocess.run([*podman_cmd, "import", str(archive), "bench:latest"], env=podman_env, check=True,
                       capture_output=True)

        print(f"run --rm IMAGE true: median of {RUNS} runs each, {os.cpu_count()} cores", flush=True)
        ours, theirs = medians(([docker, "run", "--rm", "bench", "true"], docker_env),
                               ([*podman_cmd, "run", "--rm", "bench", "true"], podman_env))
        print(f"  docker CLI -> imagestore: {ours:.3f} s", flush=True)
        print(f"  podman:                   {theirs:.3f} s", flush=True)
        print(f"imagestore/podman: ratio {ours / theirs:.2f} (target <= 1.00)")
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        subprocess.run(["umount", "-R", str(work / "podman-root")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
