"""Celery tasks: thin wrappers that run a service inside a Job."""

from __future__ import annotations

import logging
import socket

from celery import shared_task
from celery.signals import worker_ready

from .services import containers, gc, jobs, updates

log = logging.getLogger(__name__)


@shared_task(name="imagestore.tasks.run_job", ignore_result=True)
def run_job(job_id: str) -> None:
    hostname = getattr(run_job.request, "hostname", None) or socket.gethostname()
    jobs.run_job(job_id, worker=hostname)


@shared_task(name="imagestore.tasks.run_due_retention_policies", ignore_result=True)
def run_due_retention_policies() -> int:
    """Beat, every minute: retention policies whose schedule has come round start as jobs."""
    from .services import retention

    return len(retention.start_due_runs())


@shared_task(name="imagestore.tasks.deliver_webhook", ignore_result=True)
def deliver_webhook(delivery_id: int) -> None:
    """One attempt of one webhook delivery (services.webhooks queues the retries)."""
    from .services import webhooks

    webhooks.deliver(delivery_id)


@shared_task(name="imagestore.tasks.sweep_stale_jobs", ignore_result=True)
def sweep_stale_jobs() -> int:
    """Beat, every minute: running jobs whose worker died, queued jobs that no worker took."""
    resent, failed = jobs.sweep_queued_jobs()
    return jobs.sweep_stale_jobs() + failed


@shared_task(name="imagestore.tasks.collect_garbage", ignore_result=True)
def collect_garbage() -> int:
    """The hourly sweep of the data root (recorded as a HousekeepingRun)."""
    return gc.collect_garbage(trigger="beat").freed_count


@shared_task(name="imagestore.tasks.check_updates", ignore_result=True)
def check_updates() -> int:
    """Beat, every UPDATE_CHECK_INTERVAL: is a newer image available for each pulled tag?"""
    return updates.check_all()


@worker_ready.connect
def _fail_jobs_left_running(sender: object = None, **_kwargs: object) -> None:
    """A worker starting under a name finds that name's running jobs orphaned."""
    hostname = getattr(sender, "hostname", "") or ""
    failed = jobs.fail_jobs_of_worker(hostname)
    failed += jobs.sweep_stale_jobs()
    # Messages lost while no worker ran (a Redis restarted without persistence) are sent again.
    jobs.sweep_queued_jobs()
    if failed:
        log.warning("failed %d job(s) left running by a stopped worker", failed)
    exited = containers.reconcile_all()
    if exited:
        log.warning("%d container(s) were running when the host stopped; shown exited", exited)
