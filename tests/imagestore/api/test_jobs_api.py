from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from imagestore.models import Job
from imagestore.services.import_ import start_import

pytestmark = pytest.mark.django_db


def _job(store_root: Path) -> Job:
    path = store_root / "uploads" / "upload-x"
    path.write_bytes(b"data")
    return start_import(upload_path=str(path))


def test_jobs_list_and_detail_for_members(store_root: Path, member, client_for) -> None:  # type: ignore[no-untyped-def]
    job = _job(store_root)
    client = client_for(member)
    body = client.get("/api/v1/jobs/").json()
    assert body["count"] == 1 and body["results"][0]["id"] == str(job.id)
    assert "upload_path" not in body["results"][0]["params"]
    assert client.get(f"/api/v1/jobs/{job.id}/").json()["state"] == "queued"
    assert client.get("/api/v1/jobs/?state=running").json()["count"] == 0
    assert client.get("/api/v1/jobs/?kind=import").json()["count"] == 1


def test_missing_or_malformed_job_id_is_404(member, client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(member)
    for job_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = client.get(f"/api/v1/jobs/{job_id}/")
        assert response.status_code == 404 and "No such job" in response.json()["detail"]


def test_cancel_needs_an_operator_and_then_cancels(store_root: Path, member, operator, client_for) -> None:  # type: ignore[no-untyped-def]
    job = _job(store_root)
    assert client_for(member).post(f"/api/v1/jobs/{job.id}/cancel/").status_code == 403
    assert APIClient().post(f"/api/v1/jobs/{job.id}/cancel/").status_code == 401
    response = client_for(operator).post(f"/api/v1/jobs/{job.id}/cancel/")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    response = client_for(operator).post(f"/api/v1/jobs/{job.id}/cancel/")
    assert response.status_code == 409 and "already cancelled" in response.json()["detail"]


def test_schema_needs_a_signed_in_user() -> None:
    assert APIClient().get("/api/schema/").status_code == 401


def test_token_command_prints_a_token_that_works(operator, capsys) -> None:  # type: ignore[no-untyped-def]
    from django.core.management import call_command

    call_command("create_token", "olive", "--name", "test")
    token = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/jobs/").status_code == 200
