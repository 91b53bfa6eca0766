"""Jobs: conditional claim, outcomes, cancel, and jobs abandoned by a dead worker."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from imagestore.errors import Conflict, JobNotFound
from imagestore.models import Image, Job
from imagestore.services import jobs
from imagestore.services.import_ import start_import
from tests.builders import COMPRESSORS, simple_rootfs_tar


def _upload(store_root: Path, data: bytes) -> str:
    path = store_root / "uploads" / "upload-test"
    path.write_bytes(data)
    return str(path)


@pytest.mark.django_db
def test_import_job_runs_to_success_with_progress_and_result(store_root: Path, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    data = COMPRESSORS["gzip"](simple_rootfs_tar())
    path = _upload(store_root, data)
    with django_capture_on_commit_callbacks() as callbacks:
        job = start_import(upload_path=path, repository="rootfs", tag="1")
    assert len(callbacks) == 1  # the task is queued only once the row is committed
    finished = jobs.run_job(str(job.id), worker="test@host")
    assert finished is not None and finished.state == Job.State.SUCCEEDED
    image = Image.objects.get()
    assert finished.result == {"image": image.id, "short_id": image.short_id, "repo_tags": ["rootfs:1"]}
    assert finished.progress["import"] == {"current": len(data), "total": len(data), "phase": "Import complete"}
    assert finished.log[-1] == image.id
    assert finished.started_at and finished.finished_at and finished.worker == "test@host"
    assert not Path(path).exists()  # the upload belongs to the job


@pytest.mark.django_db
def test_a_job_is_claimed_once(store_root: Path) -> None:
    job = start_import(upload_path=_upload(store_root, COMPRESSORS["gzip"](simple_rootfs_tar())))
    assert jobs.run_job(str(job.id)) is not None
    assert jobs.run_job(str(job.id)) is None  # already ran: the conditional update matches no row
    assert Image.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_claim_one_job_once(store_root: Path) -> None:
    job = start_import(upload_path=_upload(store_root, COMPRESSORS["gzip"](simple_rootfs_tar())))
    results: list[object] = []
    barrier = threading.Barrier(2)

    def worker(name: str) -> None:
        from django.db import connection

        barrier.wait()
        try:
            results.append(jobs.run_job(str(job.id), worker=name))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert Image.objects.count() == 1


@pytest.mark.django_db
def test_failed_import_job_says_why_and_stores_nothing(store_root: Path) -> None:
    job = start_import(upload_path=_upload(store_root, b"not a tarball at all" * 100))
    finished = jobs.run_job(str(job.id))
    assert finished is not None and finished.state == Job.State.FAILED
    assert "not a valid tar archive" in finished.error
    assert finished.log[-1].startswith("Error: ")
    assert not Image.objects.exists()


@pytest.mark.django_db
def test_cancel_queued_job_never_runs(store_root: Path) -> None:
    job = start_import(upload_path=_upload(store_root, COMPRESSORS["gzip"](simple_rootfs_tar())))
    cancelled = jobs.cancel_job(job)
    assert cancelled.state == Job.State.CANCELLED
    assert jobs.run_job(str(job.id)) is None
    assert not Image.objects.exists()
    with pytest.raises(Conflict, match="already cancelled"):
        jobs.cancel_job(cancelled)


@pytest.mark.django_db
def test_cancel_running_job_stops_it_at_its_next_progress_write(store_root: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.JOB_PROGRESS_INTERVAL = 0
    job = start_import(upload_path=_upload(store_root, COMPRESSORS["tar"](simple_rootfs_tar())))
    original = jobs._HANDLERS["import"]

    def cancel_then_run(job: Job, progress: jobs.JobProgress) -> dict:  # type: ignore[type-arg]
        jobs.cancel_job(job)
        return original(job, progress)

    jobs._HANDLERS["import"] = cancel_then_run
    try:
        finished = jobs.run_job(str(job.id))
    finally:
        jobs._HANDLERS["import"] = original
    assert finished is not None and finished.state == Job.State.CANCELLED
    assert not Image.objects.exists()
    assert list((store_root / "tmp").iterdir()) == []


@pytest.mark.django_db
def test_job_without_heartbeat_is_failed_with_a_reason(store_root: Path) -> None:
    job = start_import(upload_path=_upload(store_root, b"x"))
    long_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=job.pk).update(state="running", worker="w1@host", heartbeat_at=long_ago, started_at=long_ago)
    assert jobs.sweep_stale_jobs(stale_after=300) == 1
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "w1@host stopped answering" in job.error
    assert not (store_root / "uploads" / "upload-test").exists()


@pytest.mark.django_db(transaction=True)
def test_a_silent_long_job_keeps_its_heartbeat_and_is_not_failed_by_the_sweeper(store_root: Path, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A big load, a commit, or a pull waiting for another pull's layer reports no progress
    for a while; before, the heartbeat was written only with progress, so the sweeper failed
    the healthy job (and deleted its upload)."""
    settings.JOB_STALE_AFTER = 1  # the heartbeat thread beats every 0.2 s
    job = start_import(upload_path=_upload(store_root, COMPRESSORS["gzip"](simple_rootfs_tar())))
    original = jobs._HANDLERS["import"]
    swept: list[int] = []

    def silent_then_import(job: Job, progress: jobs.JobProgress) -> dict:  # type: ignore[type-arg]
        time.sleep(2.5)  # silent for more than JOB_STALE_AFTER
        swept.append(jobs.sweep_stale_jobs())  # what beat runs every minute, run now
        return original(job, progress)

    monkeypatch.setitem(jobs._HANDLERS, "import", silent_then_import)
    finished = jobs.run_job(str(job.id), worker="w1@host")
    assert swept == [0]
    assert finished is not None and finished.state == Job.State.SUCCEEDED, finished.error
    assert not any(t.name.startswith("heartbeat-") for t in threading.enumerate())  # it stops with the job


@pytest.mark.django_db
def test_a_redelivered_task_for_a_running_or_finished_job_is_a_no_op(store_root: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """acks_late redelivers a message whose worker was lost; the claim makes it harmless."""
    job = start_import(upload_path=_upload(store_root, b"x"))
    Job.objects.filter(pk=job.pk).update(state="running", worker="w1@host", heartbeat_at=timezone.now())
    with caplog.at_level("INFO", logger="imagestore.services.jobs"):
        assert jobs.run_job(str(job.id), worker="w2@host") is None
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING and job.worker == "w1@host"
    assert "is running, not queued: this delivery of its task is a repeat and is ignored" in caplog.text


@pytest.mark.django_db
def test_a_task_for_an_unknown_job_is_an_error_not_a_success(caplog) -> None:  # type: ignore[no-untyped-def]
    missing = "0c5d3d51-7c0e-4cde-a1f6-8f1c5b0f0a11"
    with caplog.at_level("INFO", logger="imagestore.services.jobs"), pytest.raises(JobNotFound):
        jobs.run_job(missing, worker="w1@host")
    assert [r.levelname for r in caplog.records if missing in r.getMessage()] == ["ERROR"]


@pytest.mark.django_db
def test_restarted_worker_fails_the_jobs_it_was_running(store_root: Path) -> None:
    job = start_import(upload_path=_upload(store_root, b"x"))
    Job.objects.filter(pk=job.pk).update(state="running", worker="w1@host", heartbeat_at=timezone.now())
    assert jobs.fail_jobs_of_worker("w2@host") == 0
    assert jobs.fail_jobs_of_worker("w1@host") == 1
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "stopped while running" in job.error


@pytest.mark.django_db
def test_progress_writes_are_throttled(store_root: Path) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    job = start_import(upload_path=_upload(store_root, b"x"))
    progress = jobs.JobProgress(job, interval=3600)
    with CaptureQueriesContext(connection) as queries:
        for i in range(1000):
            progress.update("import", i, 1000, "Importing")
    assert len(queries) <= 2  # the first update writes (and checks for cancel); the rest wait
    progress.flush()
    job.refresh_from_db()
    assert job.progress["import"] == {"current": 999, "total": 1000, "phase": "Importing"}
    assert job.heartbeat_at is not None


@pytest.mark.django_db
def test_credentials_in_a_job_log_line_or_error_are_redacted_before_they_are_stored(store_root: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Not only where shown: the Job row itself (admin, database dumps) never holds them."""
    job = start_import(upload_path=_upload(store_root, COMPRESSORS["gzip"](simple_rootfs_tar())))

    def leaky(job: Job, progress: jobs.JobProgress) -> dict:  # type: ignore[type-arg]
        progress.log("GET https://bob:hunter2-pw@mirror.test/v2/ failed")
        raise ConnectionError("cannot reach https://bob:hunter2-pw@mirror.test/v2/?token=t0ken-secret")

    monkeypatch.setitem(jobs._HANDLERS, "import", leaky)
    finished = jobs.run_job(str(job.id), worker="w1@host")
    assert finished is not None and finished.state == Job.State.FAILED
    stored = Job.objects.values("log", "error").get(pk=job.id)
    assert "hunter2-pw" not in repr(stored) and "t0ken-secret" not in repr(stored)
    assert "https://bob:***@mirror.test/v2/ failed" in stored["log"][0]


@pytest.mark.django_db(transaction=True)
def test_any_failure_to_publish_fails_the_job_instead_of_leaving_it_queued(store_root: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Not only a broker that does not answer: a client-side error in publishing (a closed
    connection pool, say) also means no worker will ever see the job."""
    from imagestore.errors import JobQueueUnavailable

    def broken(job_id: object) -> None:
        raise RuntimeError("Acquire on closed pool")

    monkeypatch.setattr(jobs, "_send", broken)
    with pytest.raises(JobQueueUnavailable, match="could not be queued"):
        start_import(upload_path=_upload(store_root, COMPRESSORS["gzip"](simple_rootfs_tar())))
    assert not Job.objects.filter(state=Job.State.QUEUED).exists()
    assert Job.objects.get().state == Job.State.FAILED
    assert list((store_root / "uploads").iterdir()) == []
