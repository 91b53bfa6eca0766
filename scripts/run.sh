#!/usr/bin/env bash
# make run: migrate, make sure an admin exists, then serve the web app and a Celery
# worker in the foreground; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT=${PORT:-8000}
# No restrictive umask: the folders are 0700 (dashboard/privacy.py), which keeps everything in
# them private, while a container's root must stay 0755 for images that run as a non-root
# user (its snapshot and overlay roots still take their mode from the umask).

# A configured Redis that does not answer stops here, loudly, before anything starts.
$PY manage.py check_broker
$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput >/dev/null
$PY manage.py ensure_admin

pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  wait || true
}
trap stop INT TERM EXIT

mkdir -p var
.venv/bin/celery -A dashboard worker --beat --schedule var/celerybeat-schedule \
  --loglevel INFO --concurrency 2 --hostname "worker@%h" &
pids+=($!)
.venv/bin/gunicorn dashboard.wsgi --bind "127.0.0.1:${PORT}" --threads 8 --timeout 3600 \
  --access-logfile - --logger-class dashboard.logfilters.RedactingGunicornLogger &
pids+=($!)
echo "dashboard: http://127.0.0.1:${PORT}/  (API: /api/v1/, docs: /api/docs/, admin: /admin/)"
wait -n "${pids[@]}"
