"""``manage.py check_broker``: say which job broker this installation uses and whether it
answers; exit non-zero when it does not (``make run`` calls it before starting anything)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from dashboard.celery import BROKER_UNREACHABLE_EXIT, broker_problem


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = "Check that the configured Celery broker answers; print it and the job queue's name."

    def handle(self, *args: Any, **options: Any) -> None:
        problem = broker_problem()
        if problem is not None:
            self.stderr.write(f"ERROR: {problem}")
            raise SystemExit(BROKER_UNREACHABLE_EXIT)
        self.stdout.write(f"broker: {settings.BROKER_DESCRIPTION}, queue: {settings.CELERY_TASK_DEFAULT_QUEUE}")
