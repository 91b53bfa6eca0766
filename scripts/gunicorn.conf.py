"""gunicorn settings for `make run` and the benchmarks: several processes, each with threads.

One process with threads is held whole by one slow or abandoned client; several processes
(WEB_CONCURRENCY) are not. Read by gunicorn (``-c scripts/gunicorn.conf.py``), so no Django here.
"""

import os


def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{name}={raw!r} must be a positive whole number")
    return int(raw)


# gunicorn's own advice, 2 x cores + 1, capped: each process holds its own Django (~80 MB).
workers = _positive("WEB_CONCURRENCY", min(2 * (os.cpu_count() or 1) + 1, 8))
threads = _positive("WEB_THREADS", 8)
# Threads in every process, even with WEB_THREADS=1 (where gunicorn would pick its sync worker):
# one kind of worker, the one the stream tests run.
worker_class = "gthread"
bind = f"127.0.0.1:{_positive('PORT', 8000)}"
# Long streams (saves, progress) are bounded by the app (STREAM_IDLE_TIMEOUT), not here:
# gthread workers heartbeat from their main loop, so a long request is not a hung worker.
timeout = 3600
# On SIGTERM, requests in flight get this long before their process is killed.
graceful_timeout = _positive("WEB_GRACEFUL_TIMEOUT", 10)
accesslog = "-"
# gunicorn 25.1+ opens a control socket at one path per user ($XDG_RUNTIME_DIR or ~/.gunicorn):
# two dashboards (or a test run beside `make run`) would take each other's. Not used here.
control_socket_disable = True
# The access log with credentials in URLs (import URLs, presigned queries) redacted.
logger_class = "dashboard.logfilters.RedactingGunicornLogger"

# The GIL switch interval of every process (web, worker, command) is set in imagestore/apps.py.
