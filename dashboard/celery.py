"""The Celery app. The broker is decided once, by configuration, in settings.

A worker (and beat) checks at start that the configured broker answers and exits with a
clear message when it does not: a silent fallback or an endless retry would leave jobs
queued where nothing listens.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from celery import Celery
from celery.signals import beat_init, celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Exit status of a worker, beat or `manage.py check_broker` whose broker cannot be reached.
BROKER_UNREACHABLE_EXIT = 3


def broker_problem(timeout: float = 3.0) -> str | None:
    """None when the configured broker answers; otherwise what is wrong and what to do."""
    from django.conf import settings

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0.5, timeout=timeout)
    except Exception as exc:  # kombu raises the transport's own errors
        return (
            f"the job broker ({settings.BROKER_DESCRIPTION}) cannot be reached: {str(exc).rstrip('.')}. "
            "Start Redis there, point REDIS_URL (or CELERY_BROKER_URL) at a running one, "
            "or set REDIS_URL= (empty) to use the embedded filesystem broker on this one machine."
        )
    return None


def _stop_if_broker_unreachable(**_kwargs: Any) -> None:
    problem = broker_problem()
    if problem is not None:
        print(f"ERROR: {problem}", file=sys.stderr, flush=True)
        # SystemExit passes through Celery's signal dispatch (which swallows Exception).
        raise SystemExit(BROKER_UNREACHABLE_EXIT)


celeryd_init.connect(_stop_if_broker_unreachable, weak=False)
beat_init.connect(_stop_if_broker_unreachable, weak=False)
