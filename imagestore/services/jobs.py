"""Jobs: long operations run by Celery workers, recorded on a Job row.

Life of a job: ``create_job`` writes the row and queues the task once the
transaction commits; a worker claims it with a conditional update (queued ->
running must change exactly one row, so two workers never run one job); the
service reports through ``JobProgress`` (throttled writes, heartbeat, cancel
checks); the job ends succeeded, failed with a reason, or cancelled. A job whose
worker died is failed by ``sweep_stale_jobs`` instead of staying running forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..errors import Conflict, JobCancelled, JobNotFound, status_for
from ..models import Job

log = logging.getLogger(__name__)

MAX_LOG_LINES = 1000

Handler = Callable[[Job, "JobProgress"], dict[str, Any]]
_HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that runs jobs of ``kind``."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[kind] = fn
        return fn

    return register


def create_job(kind: str, params: dict[str, Any], owner: Any = None) -> Job:
    """Write the Job row and queue its task after the surrounding transaction commits."""
    from .. import tasks  # the task module imports this one

    job = Job.objects.create(kind=kind, params=params, owner=owner if getattr(owner, "pk", None) else None)
    transaction.on_commit(lambda: tasks.run_job.delay(str(job.id)))
    return job


def get_job(job_id: Any) -> Job:
    try:
        return Job.objects.get(pk=job_id)
    except (Job.DoesNotExist, ValueError, TypeError, ValidationError):
        raise JobNotFound(f"No such job: {job_id}") from None


class JobProgress:
    """Progress of one running job, written to its row at most every interval.

    Each write doubles as the heartbeat and as the moment a cancel request is seen.
    """

    def __init__(self, job: Job, interval: float | None = None) -> None:
        self.job_id = job.id
        self.items: dict[str, dict[str, Any]] = dict(job.progress or {})
        self.lines: list[str] = list(job.log or [])
        self.interval = settings.JOB_PROGRESS_INTERVAL if interval is None else interval
        self._last_flush = 0.0
        self._dirty = False
        # Parallel layer downloads report from several threads.
        self._lock = threading.RLock()
        # Off once the service has returned: the outcome is decided, cancel comes too late.
        self.active = True

    def update(self, item: str, done: int, total: int | None, phase: str) -> None:
        with self._lock:
            self.items[item] = {"current": done, "total": total, "phase": phase}
            self._dirty = True
        self._maybe_flush()

    def log(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)
            del self.lines[:-MAX_LOG_LINES]
            self._dirty = True
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            self._last_flush = time.monotonic()
            fields: dict[str, Any] = {"heartbeat_at": timezone.now()}
            if self._dirty:
                fields.update(progress=dict(self.items), log=list(self.lines))
                self._dirty = False
        Job.objects.filter(pk=self.job_id).update(**fields)
        if self.active and Job.objects.filter(pk=self.job_id, cancel_requested=True).exists():
            raise JobCancelled("cancelled on request")


def _finish(job_id: Any, progress: JobProgress | None, state: str, **fields: Any) -> bool:
    if progress is not None:
        fields.update(progress=dict(progress.items), log=list(progress.lines))
    updated = Job.objects.filter(pk=job_id, state=Job.State.RUNNING).update(
        state=state, finished_at=timezone.now(), **fields
    )
    return updated == 1


def run_job(job_id: str, worker: str = "") -> Job | None:
    """Claim a queued job and run it to its end. Returns None when another worker had it."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(
        state=Job.State.RUNNING, started_at=now, heartbeat_at=now, worker=worker
    )
    if claimed != 1:
        log.info("job %s was not queued any more; not running it", job_id)
        return None
    job = Job.objects.get(pk=job_id)
    progress = JobProgress(job)
    try:
        try:
            result = _HANDLERS[job.kind](job, progress)
        finally:
            progress.active = False
    except JobCancelled:
        progress.log("Cancelled")
        _finish(job.id, progress, Job.State.CANCELLED, error="cancelled on request")
    except Exception as exc:  # every failure ends the job with a reason
        status = status_for(exc)
        if status is None:
            log.exception("job %s (%s) failed unexpectedly", job.id, job.kind)
            message = f"internal error: {exc.__class__.__name__}: {exc}"
        else:
            message = str(exc)
        progress.log(f"Error: {message}")
        _finish(job.id, progress, Job.State.FAILED, error=message)
    else:
        _finish(job.id, progress, Job.State.SUCCEEDED, result=result or {})
    finally:
        _remove_job_files(job)
    job.refresh_from_db()
    return job


def _remove_job_files(job: Job) -> None:
    """Uploaded inputs belong to their job and go when it ends, however it ends."""
    upload = job.params.get("upload_path")
    if upload:
        root = Path(settings.IMAGESTORE_ROOT).resolve()
        path = Path(upload).resolve()
        if root in path.parents:
            path.unlink(missing_ok=True)


def cancel_job(job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next progress write."""
    if Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(
        state=Job.State.CANCELLED, finished_at=timezone.now(), error="cancelled before it started"
    ):
        _remove_job_files(job)
    elif not Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(cancel_requested=True):
        job.refresh_from_db()
        raise Conflict(f"job {job.id} has already {job.state}")
    job.refresh_from_db()
    return job


def retry_job(job: Job, owner: Any = None) -> Job:
    """A new job doing what a failed or cancelled one was asked to (its upload, if any, is gone)."""
    if job.state not in (Job.State.FAILED, Job.State.CANCELLED):
        raise Conflict(f"job {job.id} has {job.state}; only failed or cancelled jobs are retried")
    if "upload_path" in job.params:
        raise Conflict(f"job {job.id} worked on an upload, which is removed when a job ends: upload it again")
    return create_job(job.kind, dict(job.params), owner=owner or job.owner)


def fail_jobs_of_worker(worker: str) -> int:
    """A worker that starts again finds the jobs it was running dead: fail them."""
    if not worker:
        return 0
    jobs = list(Job.objects.filter(state=Job.State.RUNNING, worker=worker))
    for job in jobs:
        _finish(job.id, None, Job.State.FAILED, error=f"the worker {worker} stopped while running this job")
        _remove_job_files(job)
    return len(jobs)


def sweep_stale_jobs(stale_after: float | None = None) -> int:
    """Fail running jobs whose heartbeat stopped: their worker was killed or lost."""
    seconds = settings.JOB_STALE_AFTER if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=seconds)
    jobs = list(Job.objects.filter(state=Job.State.RUNNING, heartbeat_at__lt=cutoff))
    for job in jobs:
        _finish(
            job.id,
            None,
            Job.State.FAILED,
            error=f"the worker {job.worker or '(unknown)'} stopped answering (no heartbeat for {int(seconds)} s)",
        )
        _remove_job_files(job)
    return len(jobs)
