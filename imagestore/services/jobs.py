"""Jobs: long operations run by Celery workers, recorded on a Job row.

Life of a job: ``create_job`` writes the row and queues the task once the
transaction commits (a broker that does not take it fails the job and answers 503);
a worker claims it with a conditional update (queued -> running must change exactly
one row, so two workers, or a message delivered twice, never run one job); while it
runs, a heartbeat thread writes ``heartbeat_at`` and the service reports through
``JobProgress`` (throttled writes, cancel checks); the job ends succeeded, failed
with a reason, or cancelled. ``sweep_stale_jobs`` fails a running job whose worker
died and sends again, then fails, a queued job that no worker took.
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
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from kombu.exceptions import OperationalError as BrokerError

from .. import metrics
from ..errors import Conflict, JobCancelled, JobNotFound, JobQueueUnavailable, status_for
from ..models import Job
from ..oci.redact import redact_text
from . import audit

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
    """Write the Job row and queue its task after the surrounding transaction commits.

    Raises JobQueueUnavailable (503) when the broker does not take the task; the job is
    then failed and its upload removed, so nothing is left queued that no worker will see.
    """
    job = Job.objects.create(kind=kind, params=params, owner=owner if getattr(owner, "pk", None) else None,
                             origin=audit.current().origin())
    transaction.on_commit(lambda: publish_job(job))
    return job


def _send(job_id: Any) -> None:
    """The task to this installation's queue; the broker's retry policy and connect timeout
    (settings) keep this to a few seconds when the broker is down."""
    from .. import tasks  # the task module imports this one

    tasks.run_job.apply_async((str(job_id),), retry=True)


def publish_job(job: Job) -> None:
    try:
        _send(job.id)
    except Exception as exc:  # whatever stopped the task, no worker will see this job: never leave it queued
        message = (f"the job could not be queued: the job broker ({settings.BROKER_DESCRIPTION}) "
                   f"did not answer ({exc}); nothing was started, try again when it is back")
        log.error("job %s (%s): %s", job.id, job.kind, message,
                  exc_info=not isinstance(exc, (BrokerError, OSError)))  # a traceback for the unexpected
        Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(
            state=Job.State.FAILED, finished_at=timezone.now(), error=message)
        _remove_job_files(job)
        raise JobQueueUnavailable(message) from None


def get_job(job_id: Any) -> Job:
    try:
        return Job.objects.get(pk=job_id)
    except (Job.DoesNotExist, ValueError, TypeError, ValidationError):
        raise JobNotFound(gettext("No such job: %(job_id)s") % {"job_id": job_id}) from None


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
            # Redacted where written, not only where shown: a library's exception text can
            # carry a URL with its user and password.
            self.lines.append(redact_text(line))
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
            raise JobCancelled(gettext("cancelled on request"))


def _finish(job_id: Any, progress: JobProgress | None, state: str, *, only_if: Q | None = None,
            **fields: Any) -> bool:
    if progress is not None:
        fields.update(progress=dict(progress.items), log=list(progress.lines))
    rows = Job.objects.filter(pk=job_id, state=Job.State.RUNNING)
    if only_if is not None:
        rows = rows.filter(only_if)
    updated = rows.update(state=state, finished_at=timezone.now(), **fields)
    return updated == 1


def heartbeat_interval() -> float:
    """Several beats fit in JOB_STALE_AFTER, so one slow write never makes a job look dead."""
    return max(0.05, min(30.0, float(settings.JOB_STALE_AFTER) / 5))


class Heartbeat:
    """Writes a running job's ``heartbeat_at`` from its own thread for as long as the job runs.

    Progress writes alone are not enough: a big load, a commit, or a pull waiting for
    another pull's layer can be silent for longer than JOB_STALE_AFTER, and the sweeper
    would fail a healthy job and delete its upload. The heartbeat says the worker process
    is alive; cancel requests are still seen at progress writes.
    """

    def __init__(self, job_id: Any, interval: float | None = None) -> None:
        self.job_id = job_id
        self.interval = heartbeat_interval() if interval is None else interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def _beat(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                try:
                    Job.objects.filter(pk=self.job_id, state=Job.State.RUNNING).update(heartbeat_at=timezone.now())
                except DatabaseError as exc:  # a busy or restarting database: beat again next time
                    log.warning("job %s: heartbeat not written: %s", self.job_id, exc)
                    connection.close()
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopped.set()
        self._thread.join()


def run_job(job_id: str, worker: str = "") -> Job | None:
    """Claim a queued job and run it to its end. Returns None when another worker had it."""
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(
        state=Job.State.RUNNING, started_at=now, heartbeat_at=now, worker=worker
    )
    if claimed != 1:
        state = Job.objects.filter(pk=job_id).values_list("state", flat=True).first()
        if state is None:
            # Not a success: the task came from another installation sharing this queue, or
            # the row was deleted. Raised, so the worker logs the task as failed too.
            log.error("no job %s in this installation's database (queue %s): its task was sent by another "
                      "installation or the job was deleted; nothing run", job_id, settings.CELERY_TASK_DEFAULT_QUEUE)
            raise JobNotFound(gettext("No such job: %(job_id)s") % {"job_id": job_id})
        # A second delivery (acks_late redelivers after a lost worker, the sweeper re-sends).
        log.info("job %s is %s, not queued: this delivery of its task is a repeat and is ignored", job_id, state)
        return None
    job = Job.objects.select_related("owner").get(pk=job_id)
    progress = JobProgress(job)
    try:
        try:
            # On behalf of whoever asked, through their door; a failure is the job's action's.
            with Heartbeat(job.id), audit.acting(audit.for_job(job)), \
                    audit.action(job.kind, object_type="job", object_id=str(job.id), names=_job_names(job)):
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
        message = redact_text(message)
        progress.log(f"Error: {message}")
        _finish(job.id, progress, Job.State.FAILED, error=message)
    else:
        _finish(job.id, progress, Job.State.SUCCEEDED, result=result or {})
    finally:
        _remove_job_files(job)
    job.refresh_from_db()
    _measure(job)
    return job


def moved_bytes(job: Job) -> int:
    """What a job moved, from its progress: every item's bytes done, but those it already had."""
    total = 0
    for state in (job.progress or {}).values():
        phase = str(state.get("phase") or "").lower()
        if "already exists" in phase or phase == "waiting":
            continue
        current = state.get("current")
        if isinstance(current, int) and current > 0:
            total += current
    return total


def _measure(job: Job) -> None:
    seconds = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
    try:
        metrics.job_ended(job.kind, job.state, seconds, moved_bytes(job) if job.state == Job.State.SUCCEEDED else 0)
    except Exception as exc:  # a metrics folder gone or full must not fail a finished job
        log.warning("job %s: metrics not written: %s", job.id, exc)


def _job_names(job: Job) -> list[str]:
    params = job.params or {}
    names = params.get("images") or [params.get("reference") or params.get("repository") or params.get("container")]
    return [str(n) for n in names if n]


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
        raise Conflict(gettext("job %(job_id)s has already %(state)s") % {"job_id": job.id, "state": job.state})
    job.refresh_from_db()
    return job


def retry_job(job: Job, owner: Any = None) -> Job:
    """A new job doing what a failed or cancelled one was asked to (its upload, if any, is gone)."""
    if job.state not in (Job.State.FAILED, Job.State.CANCELLED):
        raise Conflict(gettext("job %(job_id)s has %(state)s; only failed or cancelled jobs are retried")
                       % {"job_id": job.id, "state": job.state})
    if "upload_path" in job.params:
        raise Conflict(gettext("job %(job_id)s worked on an upload, which is removed when a job ends: upload it "
                               "again") % {"job_id": job.id})
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
    failed = 0
    for job in Job.objects.filter(state=Job.State.RUNNING, heartbeat_at__lt=cutoff):
        # Still stale at the moment of the update: a heartbeat written since is a live job.
        if _finish(job.id, None, Job.State.FAILED, only_if=Q(heartbeat_at__lt=cutoff),
                   error=f"the worker {job.worker or '(unknown)'} stopped answering "
                         f"(no heartbeat for {int(seconds)} s)"):
            _remove_job_files(job)
            failed += 1
    return failed


def sweep_queued_jobs(timeout: float | None = None) -> tuple[int, int]:
    """Queued jobs that no worker took: sent again once, then failed with a reason.

    A message can be lost (Redis restarted without persistence, a worker lost between
    taking a message and claiming its job) or sit where no worker listens (no worker
    running for this installation). After JOB_QUEUED_TIMEOUT the task is sent again (the
    claim makes a duplicate harmless); after another timeout the job is failed, unless
    other jobs are running: then the workers are busy and the job is waiting, not lost.
    A queued job's ``heartbeat_at`` records when its task was sent again.
    Returns (sent again, failed).
    """
    seconds = settings.JOB_QUEUED_TIMEOUT if timeout is None else timeout
    now = timezone.now()
    cutoff = now - timedelta(seconds=seconds)
    resent = 0
    for job in Job.objects.filter(state=Job.State.QUEUED, heartbeat_at__isnull=True, created_at__lt=cutoff):
        line = f"No worker took this job in {int(seconds)} s: its task was sent to the queue again"
        if not Job.objects.filter(pk=job.pk, state=Job.State.QUEUED, heartbeat_at__isnull=True).update(
                heartbeat_at=now, log=[*(job.log or []), line]):
            continue  # taken or cancelled meanwhile
        try:
            _send(job.id)
        except (BrokerError, OSError) as exc:
            log.warning("job %s: could not send its task again (%s); the next sweep tries again", job.id, exc)
            Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(heartbeat_at=None, log=job.log or [])
            break  # the broker is down for the rest too
        log.warning("job %s (%s) was queued for %d s without a worker taking it: sent again", job.id, job.kind,
                    int(seconds))
        resent += 1
    busy = Job.objects.filter(state=Job.State.RUNNING,
                              heartbeat_at__gte=now - timedelta(seconds=settings.JOB_STALE_AFTER)).exists()
    failed = 0
    if not busy:
        error = (f"no worker took this job from the queue {settings.CELERY_TASK_DEFAULT_QUEUE} in "
                 f"{int(2 * seconds)} s, though it was sent twice: is a worker running for this installation "
                 "(the same DATABASE_URL and IMAGESTORE_ROOT, or CELERY_QUEUE)?")
        for job in Job.objects.filter(state=Job.State.QUEUED, heartbeat_at__lt=cutoff):
            if Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(
                    state=Job.State.FAILED, finished_at=now, error=error):
                log.error("job %s (%s): %s", job.id, job.kind, error)
                _remove_job_files(job)
                failed += 1
    return resent, failed
