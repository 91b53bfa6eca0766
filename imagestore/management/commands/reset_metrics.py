"""``manage.py reset_metrics``: empty this installation's metrics folder (METRICS_DIR) before
the servers start, as `make run` does: the samples of an earlier run's processes are not this run's."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from imagestore import metrics


class Command(BaseCommand):
    help = "Empty the Prometheus multiprocess folder (run before starting gunicorn and the workers)."

    def handle(self, *args: Any, **options: Any) -> None:
        removed = metrics.reset()
        self.stdout.write(f"removed {removed} metrics file(s)")
