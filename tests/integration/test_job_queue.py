"""Jobs that can't be lost, on real Redis and real worker processes: a queue per installation,
a broker decided by configuration (a loud start when it is down, 503 when it is down at
submit), a task for an unknown job logged as an error, and queued jobs no worker took."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings
from django.utils import timezone

from imagestore.dbutil import database_url
from imagestore.models import Image, Job
from imagestore.services import jobs
from imagestore.services.import_ import start_import
from tests.builders import COMPRESSORS, simple_rootfs_tar
from tests.integration.conftest import ROOT, Worker
from tests.integration.registry import allow_outbound, free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# What the test run sets for itself; an installation of these tests is configured from scratch.
_OWN_SETTINGS = ("CELERY_TEST_QUEUE", "CELERY_QUEUE", "CELERY_BROKER_URL", "REDIS_URL", "VAR_DIR", "DATABASE_URL",
                 "IMAGESTORE_ROOT", "DJANGO_SETTINGS_MODULE", "JOB_QUEUED_TIMEOUT")


def _wait_for(predicate: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _upload(root: Path, marker: str = "hello") -> str:
    path = root / "uploads" / f"upload-{uuid.uuid4().hex}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(COMPRESSORS["gzip"](simple_rootfs_tar(marker)))
    return str(path)


class Installation:
    """One installation of the dashboard: its own SQLite database and data folder, the
    default settings (no test queue), sharing the test run's Redis database."""

    def __init__(self, base: Path, name: str, template_db: Path, broker: str) -> None:
        self.name = name
        folder = base / name
        folder.mkdir()
        self.db = folder / "db.sqlite3"
        shutil.copy(template_db, self.db)
        self.root = folder / "store"
        self.log = folder / "worker.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in _OWN_SETTINGS},
            "DJANGO_SETTINGS_MODULE": "dashboard.settings", "VAR_DIR": str(folder / "var"),
            "DATABASE_URL": f"sqlite:///{self.db}", "IMAGESTORE_ROOT": str(self.root), "REDIS_URL": broker,
            "SECRET_KEY": "an-installation-of-the-tests-" + name * 8, "JOB_PROGRESS_INTERVAL_MS": "100",
        }
        self.queue = self.python("from dashboard.celery import app; print(app.conf.task_default_queue)")

    def python(self, code: str) -> str:
        result = subprocess.run([sys.executable, "-c", "import django; django.setup()\n" + code], cwd=ROOT,
                                env=self.env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def submit_import(self, repository: str) -> str:
        """What the web process does: write the row, publish the task to this installation's queue."""
        return self.python("from imagestore.services.import_ import start_import\n"
                           f"print(start_import(upload_path={_upload(self.root)!r}, repository={repository!r}).id)")

    def job(self, job_id: str) -> tuple[str, str]:
        with sqlite3.connect(self.db) as db:
            row = db.execute("SELECT state, error FROM imagestore_job WHERE id = ?", (job_id.replace("-", ""),)).fetchone()
        return row

    def start_worker(self) -> Worker:
        worker = Worker(f"worker@{self.name}", self.env, self.log)
        worker.wait_ready()
        return worker


@pytest.fixture
def installations(redis_broker: str, tmp_path: Path) -> Iterator[Callable[[str], Installation]]:
    template = tmp_path / "template.sqlite3"
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, capture_output=True, text=True,
        env={**{k: v for k, v in os.environ.items() if k not in _OWN_SETTINGS},
             "DJANGO_SETTINGS_MODULE": "dashboard.settings", "VAR_DIR": str(tmp_path / "template-var"),
             "DATABASE_URL": f"sqlite:///{template}", "SECRET_KEY": "template" * 8, "REDIS_URL": redis_broker},
    )
    assert migrate.returncode == 0, migrate.stderr
    made: list[Installation] = []

    def make(name: str) -> Installation:
        made.append(Installation(tmp_path, name, template, redis_broker))
        return made[-1]

    yield make
    client = redis.Redis.from_url(redis_broker)
    for installation in made:
        client.delete(installation.queue)


def test_installations_sharing_one_redis_never_take_each_others_jobs(installations) -> None:  # type: ignore[no-untyped-def]
    """Two installations on one Redis database. Before, both used the queue "celery": one's
    worker took the other's job, found no row, logged success, and the job stayed queued."""
    a, b = installations("a"), installations("b")
    assert a.queue != b.queue and "celery" not in (a.queue, b.queue)
    worker_b = b.start_worker()  # only b's worker listens when a's job is queued
    workers = [worker_b]
    try:
        job_a = a.submit_import("from-a:1")
        time.sleep(3)  # time enough for b's worker to take it, if it could
        assert a.job(job_a)[0] == "queued"
        workers.append(a.start_worker())
        _wait_for(lambda: a.job(job_a)[0] in ("succeeded", "failed"), what="a's import")
        assert a.job(job_a) == ("succeeded", "")
        job_b = b.submit_import("from-b:1")
        _wait_for(lambda: b.job(job_b)[0] in ("succeeded", "failed"), what="b's import")
        assert b.job(job_b) == ("succeeded", "")
    finally:
        for worker in workers:
            worker.stop()
    assert job_a.replace("-", "") not in b.log.read_text().replace("-", "")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own, on a free port, that the test may stop."""
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    _wait_for(answers, 10, "the test's own redis-server")
    yield url, server
    if server.poll() is None:
        server.send_signal(signal.SIGCONT)
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("down", ["stopped", "frozen"])
def test_redis_down_at_submit_answers_503_and_leaves_no_queued_job_and_no_upload(  # type: ignore[no-untyped-def]
        down: str, own_redis, operator, store_root: Path, tmp_path: Path) -> None:
    """Stopped (connections refused) or frozen (connections accepted, never answered): either
    way a submit answers 503 in seconds; before, a 500 (or a request hanging for ever) and
    the job row left queued."""
    from imagestore.services.tokens import create_token

    broker, redis_server = own_redis
    allow_outbound("127.0.0.1:1")  # the pull's registry: refused by nobody listening, not by the policy
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings", "DATABASE_URL": database_url(),
           "IMAGESTORE_ROOT": str(store_root), "CELERY_BROKER_URL": broker}
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "dashboard.wsgi", "--bind", f"127.0.0.1:{port}",
                                   "--threads", "4"], cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        def serving() -> bool:
            try:
                return requests.get(f"{url}/docker/_ping", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        _wait_for(serving, 30, "gunicorn")
        api = requests.Session()
        api.auth = ("olive", "pw-operator")
        # While Redis answers, a job is queued (and the web process holds a broker connection).
        queued = api.post(f"{url}/api/v1/images/pull/", json={"reference": "127.0.0.1:1/nothing:1"}, timeout=30)
        assert queued.status_code == 202, queued.text
        assert api.post(f"{url}/api/v1/jobs/{queued.json()['id']}/cancel/", timeout=30).status_code == 200

        if down == "stopped":
            redis_server.terminate()
            redis_server.wait(10)
        else:
            redis_server.send_signal(signal.SIGSTOP)
        tarball = COMPRESSORS["gzip"](simple_rootfs_tar())

        started = time.monotonic()
        rest = api.post(f"{url}/api/v1/images/import/", files={"file": ("rootfs.tar.gz", tarball)},
                        data={"repository": "down:1"}, timeout=40)
        took = time.monotonic() - started
        assert rest.status_code == 503, rest.text
        assert "could not be queued" in rest.json()["detail"] and "job broker" in rest.json()["detail"]
        print(f"503 with the broker {down} after {took:.2f} s")
        assert took < 15, f"a request with the broker down took {took:.1f} s"

        token_key = create_token(operator)[1]
        docker = requests.post(f"{url}/docker/v1.47/images/load", data=tarball, timeout=60,
                               headers={"Authorization": f"Token {token_key}", "Content-Type": "application/x-tar"})
        assert docker.status_code == 503, docker.text
        assert "could not be queued" in docker.json()["message"]

        page = requests.Session()
        page.get(f"{url}/accounts/login/", timeout=30)
        page.post(f"{url}/accounts/login/", data={"username": "olive", "password": "pw-operator",
                                                  "csrfmiddlewaretoken": page.cookies["csrftoken"]}, timeout=30)
        form = page.post(f"{url}/load/", files={"file": ("images.tar", tarball)},
                         data={"csrfmiddlewaretoken": page.cookies["csrftoken"]}, timeout=60)
        assert "could not be queued" in form.text, form.text[:2000]
    finally:
        server.terminate()
        server.wait(10)

    assert not Job.objects.filter(state=Job.State.QUEUED).exists()
    failed = Job.objects.filter(state=Job.State.FAILED)
    assert failed.count() == 3 and all("could not be queued" in job.error for job in failed)
    assert list((store_root / "uploads").iterdir()) == []
    assert b"Traceback" not in log.read_bytes()


def _worker_env(store_root: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings", "DATABASE_URL": database_url(),
            "IMAGESTORE_ROOT": str(store_root), **extra}


def test_worker_and_make_run_refuse_to_start_when_the_configured_redis_is_down(store_root: Path, tmp_path: Path) -> None:
    """Before, an unreachable Redis meant a silent embedded broker no web process shared."""
    down = f"redis://127.0.0.1:{free_port()}/0"
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "dashboard", "worker", "--pool", "solo", "--loglevel", "INFO"],
        cwd=ROOT, env=_worker_env(store_root, REDIS_URL=down), capture_output=True, text=True, timeout=60)
    assert worker.returncode != 0
    assert f"the job broker ({down}) cannot be reached" in worker.stderr
    assert "REDIS_URL" in worker.stderr and " ready." not in worker.stderr + worker.stdout

    run = subprocess.run(["bash", "scripts/run.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=_worker_env(store_root, REDIS_URL=down, VAR_DIR=str(tmp_path / "var"),
                                         PORT=str(free_port())))
    assert run.returncode != 0
    assert f"the job broker ({down}) cannot be reached" in run.stderr


def test_a_task_for_an_unknown_job_is_an_error_in_the_worker_log(start_worker) -> None:  # type: ignore[no-untyped-def]
    from imagestore import tasks

    worker = start_worker()
    missing = str(uuid.uuid4())
    task_id = tasks.run_job.delay(missing).id
    _wait_for(lambda: any(task_id in line and ("succeeded" in line or "raised" in line)
                          for line in worker.log.read_text().splitlines()), what="the worker to handle the task")
    lines = worker.log.read_text().splitlines()
    assert any(" ERROR " in line and f"no job {missing}" in line for line in lines), lines
    assert not any(task_id in line and "succeeded" in line for line in lines), lines


def _queue_messages(client: redis.Redis) -> list[bytes]:
    return client.lrange(settings.CELERY_TASK_DEFAULT_QUEUE, 0, -1)  # type: ignore[return-value]


def test_a_queued_job_no_worker_took_is_sent_again_once_then_failed_with_a_reason(
        redis_broker: str, store_root: Path) -> None:
    client = redis.Redis.from_url(redis_broker)
    job = start_import(upload_path=_upload(store_root), repository="lost:1")
    assert len(_queue_messages(client)) == 1  # published on commit
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)  # the message is lost (Redis restarted, say)

    assert jobs.sweep_queued_jobs() == (0, 0)  # not old yet
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=settings.JOB_QUEUED_TIMEOUT + 1))
    assert jobs.sweep_queued_jobs() == (1, 0)
    messages = _queue_messages(client)
    assert len(messages) == 1 and str(job.id).encode() in messages[0]
    assert jobs.sweep_queued_jobs() == (0, 0)  # once
    job.refresh_from_db()
    assert job.state == Job.State.QUEUED and "sent to the queue again" in job.log[-1]

    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)  # no worker took it again
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=settings.JOB_QUEUED_TIMEOUT + 1))
    assert jobs.sweep_queued_jobs() == (0, 1)
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and job.finished_at is not None
    assert f"no worker took this job from the queue {settings.CELERY_TASK_DEFAULT_QUEUE}" in job.error
    assert "is a worker running for this installation" in job.error
    assert list((store_root / "uploads").iterdir()) == []  # its upload went with it


def test_a_queued_job_waiting_behind_running_ones_is_not_failed(redis_broker: str, store_root: Path) -> None:
    busy = start_import(upload_path=_upload(store_root, "busy"), repository="busy:1")
    Job.objects.filter(pk=busy.pk).update(state=Job.State.RUNNING, heartbeat_at=timezone.now())
    waiting = start_import(upload_path=_upload(store_root, "waiting"), repository="waiting:1")
    long_ago = timezone.now() - timedelta(seconds=3 * settings.JOB_QUEUED_TIMEOUT)
    Job.objects.filter(pk=waiting.pk).update(created_at=long_ago, heartbeat_at=long_ago)
    assert jobs.sweep_queued_jobs() == (0, 0)
    assert Job.objects.get(pk=waiting.pk).state == Job.State.QUEUED


def test_a_job_whose_message_was_lost_runs_when_a_worker_starts(start_worker, redis_broker: str,
                                                               store_root: Path) -> None:
    """Redis restarted mid-queue (the message is gone): a worker starting sends it again."""
    job = start_import(upload_path=_upload(store_root), repository="found:1")
    redis.Redis.from_url(redis_broker).delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=settings.JOB_QUEUED_TIMEOUT + 1))
    start_worker()
    _wait_for(lambda: Job.objects.get(pk=job.pk).finished, what="the lost job to run")
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error
    assert Image.objects.filter(tags__name="1").exists()


def test_a_job_silent_for_longer_than_the_stale_limit_is_not_failed_by_the_sweeper(  # type: ignore[no-untyped-def]
        start_worker, paced_source, store_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real worker, an import whose source goes quiet for 8 s: the heartbeat thread keeps
    the job alive while the sweeper (5 s limit here) runs twice a second. Before, the
    heartbeat came only with progress and the sweeper failed the healthy job."""
    from tests.builders import tar_bytes

    monkeypatch.setenv("JOB_STALE_AFTER", "10")  # the worker beats every 2 s
    body = COMPRESSORS["gzip"](tar_bytes([("noise", os.urandom(48 << 10))]))
    assert len(body) > 32768
    url = paced_source(body, 8.0, pause_once=True)
    start_worker()
    job = start_import(url=url, repository="quiet:1")
    _wait_for(lambda: Job.objects.get(pk=job.pk).state != Job.State.QUEUED, what="the import to start")
    swept = 0
    while not Job.objects.get(pk=job.pk).finished:
        swept += jobs.sweep_stale_jobs(stale_after=5)
        time.sleep(0.5)
    job.refresh_from_db()
    assert swept == 0 and job.state == Job.State.SUCCEEDED, job.error
    assert (job.finished_at - job.started_at).total_seconds() > 7  # it really was silent that long
