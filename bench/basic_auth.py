"""HTTP Basic auth beside a token: 16 concurrent clients reading /api/v1/images/ from gunicorn
started as `make run` starts it (scripts/gunicorn.conf.py), Basic for BENCH_SECONDS, then a
token for as long. Prints requests/s, median latency and the ratio (target: Basic at least
half the token's throughput). A throw-away SQLite store and the real password hasher."""

from __future__ import annotations

import base64
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, django_env, manage  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = 2.0  # not counted: each web process pays its first full password check here
PASSWORD = "bench-password-1"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load(url: str, headers: dict[str, str], seconds: float) -> tuple[float, float, int]:
    """Requests/s and median latency (ms) of CLIENTS clients, each on a kept-alive connection."""
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors = [0]
    start_at = time.monotonic() + 0.2
    counted_from = start_at + WARMUP
    stop_at = counted_from + seconds

    def client(index: int) -> None:
        session = requests.Session()
        session.headers.update(headers)
        while time.monotonic() < start_at:
            time.sleep(0.01)
        while True:
            began = time.monotonic()
            if began >= stop_at:
                return
            response = session.get(url, timeout=60)
            ended = time.monotonic()
            if response.status_code != 200:
                errors[0] += 1
            elif began >= counted_from and ended <= stop_at:
                latencies[index].append(ended - began)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = [x for per_client in latencies for x in per_client]
    return len(done) / seconds, statistics.median(done) * 1000 if done else float("nan"), errors[0]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-basic-"))
    env = django_env(work)
    env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    env["DJANGO_SUPERUSER_USERNAME"] = "bench"
    subprocess.run(manage("ensure_admin"), cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    token = subprocess.run(manage("create_token", "bench"), cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True).stdout.strip()  # the key alone
    port = free_port()
    env["PORT"] = str(port)
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "scripts/gunicorn.conf.py", "dashboard.wsgi"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/v1/images/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.2)
        workers = os.environ.get("WEB_CONCURRENCY") or f"default ({min(2 * (os.cpu_count() or 1) + 1, 8)})"
        print(f"basic auth: {CLIENTS} clients, {SECONDS:g} s each after {WARMUP:g} s of warm-up, "
              f"WEB_CONCURRENCY {workers}, {os.cpu_count()} cores", flush=True)
        basic = load(url, {"Authorization": "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()},
                     SECONDS)
        print(f"  Basic: {basic[0]:.0f} requests/s, median {basic[1]:.0f} ms ({basic[2]} errors)", flush=True)
        tok = load(url, {"Authorization": f"Token {token}"}, SECONDS)
        print(f"  Token: {tok[0]:.0f} requests/s, median {tok[1]:.0f} ms ({tok[2]} errors)", flush=True)
        ratio = basic[0] / tok[0] if tok[0] else float("nan")
        print(f"Basic/Token throughput: ratio {ratio:.2f} (target >= 0.50)")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
