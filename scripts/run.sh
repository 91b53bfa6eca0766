#!/usr/bin/env bash
# make run: migrate, make sure an admin exists, then serve the web app (gunicorn: WEB_CONCURRENCY
# processes of WEB_THREADS threads, scripts/gunicorn.conf.py) and a Celery worker with its beat
# in the foreground. Ctrl-C or SIGTERM stops all of them (make forwards SIGTERM to this script).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export PORT=${PORT:-8000}
# Seconds the servers get to finish on SIGTERM before what is left of them is killed.
STOP_GRACE=${STOP_GRACE:-20}
[[ $STOP_GRACE =~ ^[0-9]+$ ]] || { echo "STOP_GRACE=$STOP_GRACE must be a whole number of seconds" >&2; exit 2; }
# No restrictive umask: the folders are 0700 (dashboard/privacy.py), which keeps everything in
# them private, while a container's root must stay 0755 for images that run as a non-root
# user (its snapshot and overlay roots still take their mode from the umask).

# A configured Redis that does not answer stops here, loudly, before anything starts.
$PY manage.py check_broker
$PY manage.py migrate --noinput
$PY manage.py collectstatic --noinput >/dev/null
$PY manage.py ensure_admin
$PY manage.py reset_metrics >/dev/null  # an earlier run's samples are not this run's

# Job control: each server starts in a process group of its own (its pid), so stopping can
# reach its children (gunicorn's workers, Celery's pool and beat) even if it dies first.
set -m
pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] || exit 0
  echo "stopping: ${pids[*]}" >&2
  kill -TERM "${pids[@]}" 2>/dev/null || true  # the masters first: a warm shutdown
  for ((i = 0; i < STOP_GRACE * 10; i++)); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait || true
  exit 0
}
trap stop INT TERM EXIT

mkdir -p var
.venv/bin/celery -A dashboard worker --beat --schedule var/celerybeat-schedule \
  --loglevel INFO --concurrency 2 --hostname "worker@%h" &
pids+=($!)
.venv/bin/gunicorn -c scripts/gunicorn.conf.py dashboard.wsgi &
# No restrictive umask: the folders are 0700 (dashboard/privacy.py), which keeps everything in
# them private, while a container's root must stay 0755 for images that run as a non-root
# user (its snapshot and overlay roots still take their mode from the umask).
pids+=($!)
echo "dashboard: http://127.0.0.1:${PORT}/  (API: /api/v1/, docs: /api/docs/, admin: /admin/)"
# Until either server ends (or a signal comes): then the EXIT trap stops the other.
wait -n "${pids[@]}" || true
