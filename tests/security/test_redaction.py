"""Issue 10 finding 7, secrets: a mirror's user and password, an import URL's credentials and
secret query parameters never reach a reader: not the API, not a job's log or error, not the
job page, not gunicorn's access log, not Django's log."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.test import Client
from rest_framework.test import APIClient

from imagestore.models import Job
from imagestore.services import jobs
from imagestore.services.tokens import create_token
from tests.integration.registry import build_busybox_layout, free_port, skopeo_copy, start_registry

ROOT = Path(__file__).resolve().parents[2]
MIRROR_PASSWORD = "mirr0r-pa55"
IMPORT_PASSWORD = "imp0rt-pa55"
SIGNATURE = "s1gnature-secret"


def _member_client(member) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_login(member)
    return client


@pytest.mark.django_db
def test_mirror_credentials_are_not_shown_in_the_registry_settings(member, operator, settings) -> None:  # type: ignore[no-untyped-def]
    settings.REGISTRY_MIRRORS = [f"http://mirror-user:{MIRROR_PASSWORD}@127.0.0.1:5999"]
    shown = _member_client(member).get("/api/v1/registries/settings/")
    assert shown.status_code == 200 and MIRROR_PASSWORD not in shown.content.decode()
    assert shown.json()["registry_mirrors"] == ["http://mirror-user:***@127.0.0.1:5999"]
    page = Client()
    page.force_login(member)
    assert MIRROR_PASSWORD not in page.get("/registries/").content.decode()
    docker = Client(HTTP_AUTHORIZATION=f"Token {create_token(operator)[1]}").get("/docker/v1.47/info")
    assert docker.status_code == 200 and MIRROR_PASSWORD not in docker.content.decode()


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_failing_mirrors_credentials_stay_out_of_the_pull_job(tmp_path: Path, member, operator, settings) -> None:  # type: ignore[no-untyped-def]
    registry = start_registry(tmp_path / "registry")
    try:
        skopeo_copy(f"oci:{build_busybox_layout(tmp_path / 'umoci')}:busybox",
                    f"docker://{registry.host}/library/centos:6.6")
        settings.REGISTRY_MIRRORS = [f"http://mirror-user:{MIRROR_PASSWORD}@127.0.0.1:{free_port()}", registry.url]
        response = APIClient(HTTP_AUTHORIZATION=f"Token {create_token(operator)[1]}").post(
            "/api/v1/images/pull/", {"reference": "centos:6.6"}, format="json")
        job = jobs.run_job(response.json()["id"])
    finally:
        registry.stop()
    assert job is not None and job.state == Job.State.SUCCEEDED
    assert any("mirror http://mirror-user:***@127.0.0.1" in line for line in job.log)  # the line is there
    assert MIRROR_PASSWORD not in repr(job.log)
    assert MIRROR_PASSWORD not in _member_client(member).get(f"/api/v1/jobs/{job.id}/").content.decode()


@pytest.mark.django_db
def test_import_url_credentials_stay_out_of_the_job_and_its_page(member, operator, outbound_allow) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    outbound_allow.append(f"127.0.0.1:{port}")  # reached (and refused by nobody listening), not by the policy
    url = f"http://import-user:{IMPORT_PASSWORD}@127.0.0.1:{port}/rootfs.tar?X-Amz-Signature={SIGNATURE}"
    response = APIClient(HTTP_AUTHORIZATION=f"Token {create_token(operator)[1]}").post(
        "/api/v1/images/import/", {"url": url, "repository": "x"}, format="json")
    assert response.status_code == 202
    job = jobs.run_job(response.json()["id"])
    assert job is not None and job.state == Job.State.FAILED
    assert IMPORT_PASSWORD not in job.error + repr(job.log) and SIGNATURE not in job.error + repr(job.log)
    for shown in (_member_client(member).get(f"/api/v1/jobs/{job.id}/"), _member_client(member).get("/api/v1/jobs/")):
        assert shown.status_code == 200
        assert IMPORT_PASSWORD not in shown.content.decode() and SIGNATURE not in shown.content.decode()
    page = Client()
    page.force_login(member)
    body = page.get(f"/jobs/{job.id}/").content.decode()
    assert IMPORT_PASSWORD not in body and SIGNATURE not in body


@pytest.mark.django_db
def test_a_job_log_line_with_a_url_credential_is_redacted_where_shown(member) -> None:  # type: ignore[no-untyped-def]
    """Whatever put it there (a library's exception text), a reader never sees it."""
    job = Job.objects.create(kind=Job.Kind.PULL, params={}, state=Job.State.FAILED,
                             log=[f"GET https://bob:{MIRROR_PASSWORD}@mirror.test/v2/ failed"],
                             error=f"cannot reach https://bob:{MIRROR_PASSWORD}@mirror.test/v2/?token=t0ken")
    shown = _member_client(member).get(f"/api/v1/jobs/{job.id}/").json()
    assert shown["log"] == ["GET https://bob:***@mirror.test/v2/ failed"]
    assert shown["error"] == "cannot reach https://bob:***@mirror.test/v2/?token=***"


@pytest.mark.parametrize("logger", ["django.request", "django.server"])
def test_djangos_log_lines_are_redacted(logger: str) -> None:
    """Django's request warnings, and the request lines `manage.py runserver` logs."""
    name = "django.server" if logger == "django.server" else "console"
    handler = next(h for h in logging.getLogger(logger if logger == "django.server" else "").handlers if h.name == name)
    record = logging.LogRecord(logger, logging.WARNING, __file__, 1, '"%s" %s %s',
                               (f"POST /docker/images/create?fromSrc=http%3A%2F%2Fu%3A{IMPORT_PASSWORD}%40h%2Fx "
                                "HTTP/1.1", 401, 10), None)
    record.server_time = "now"
    record.status_code = 401
    assert handler.filter(record)
    line = handler.format(record)
    assert IMPORT_PASSWORD not in line and "fromSrc=http%3A%2F%2Fu%3A***%40h" in line


def test_the_access_log_of_run_sh_never_shows_url_credentials(tmp_path: Path) -> None:
    """gunicorn started with run.sh's configuration; `docker import URL` and a token in a
    query string, as clients send them."""
    assert "-c scripts/gunicorn.conf.py" in (ROOT / "scripts" / "run.sh").read_text()
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings", "REDIS_URL": "redis://127.0.0.1:1/0",
           "PORT": str(port), "WEB_CONCURRENCY": "1", "WEB_THREADS": "2"}
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "scripts/gunicorn.conf.py", "dashboard.wsgi"],
            cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/docker/_ping", timeout=1)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        source = f"http://import-user:{IMPORT_PASSWORD}@127.0.0.1:1/x.tar?X-Amz-Signature={SIGNATURE}"
        assert requests.post(f"{url}/docker/v1.47/images/create", params={"fromSrc": source, "repo": "x"},
                             timeout=10).status_code == 401
        assert requests.get(f"{url}/api/v1/jobs/?token=t0ken-secret", timeout=10).status_code == 401
    finally:
        server.terminate()
        server.wait(10)
    written = log_path.read_text()
    assert "/docker/v1.47/images/create?fromSrc=http%3A%2F%2Fimport-user%3A***%40" in written
    assert "/api/v1/jobs/?token=***" in written
    for secret in (IMPORT_PASSWORD, SIGNATURE, "t0ken-secret"):
        assert secret not in written
