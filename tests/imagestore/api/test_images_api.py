"""The images endpoints, as an operator, a read-only member and an outsider see them."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from imagestore.models import Image, Job, Tag
from imagestore.services.tag import tag_image
from imagestore.services.tokens import create_token
from tests.builders import COMPRESSORS, simple_rootfs_tar

pytestmark = pytest.mark.django_db


# --- auth -----------------------------------------------------------------------------

def test_outsider_gets_401_everywhere(make_image) -> None:  # type: ignore[no-untyped-def]
    make_image("centos:6.6")
    client = APIClient()
    for method, url in [("get", "/api/v1/images/"), ("get", "/api/v1/images/centos:6.6/"),
                        ("get", "/api/v1/images/centos:6.6/inspect/"), ("post", "/api/v1/images/centos:6.6/tag/"),
                        ("post", "/api/v1/images/import/"), ("delete", "/api/v1/images/centos:6.6/"),
                        ("get", "/api/v1/jobs/")]:
        response = getattr(client, method)(url)
        assert response.status_code == 401, url
        assert response.json()["detail"]
    assert Tag.objects.count() == 1


def test_member_reads_but_cannot_change(make_image, member, client_for) -> None:  # type: ignore[no-untyped-def]
    make_image("centos:6.6")
    client = client_for(member)
    assert client.get("/api/v1/images/").status_code == 200
    assert client.get("/api/v1/images/centos:6.6/inspect/").status_code == 200
    response = client.post("/api/v1/images/centos:6.6/tag/", {"repository": "x"}, format="json")
    assert response.status_code == 403 and "operators" in response.json()["detail"]
    assert client.delete("/api/v1/images/centos:6.6/").status_code == 403
    assert client.post("/api/v1/images/import/", {"url": "http://127.0.0.1:1/x.tar"}).status_code == 403
    assert Tag.objects.count() == 1 and not Job.objects.exists()


def test_token_and_basic_auth_work(make_image, operator) -> None:  # type: ignore[no-untyped-def]
    make_image("centos:6.6")
    _, token_key = create_token(operator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
    assert client.get("/api/v1/images/").status_code == 200
    basic = base64.b64encode(b"olive:pw-operator").decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {basic}")
    assert client.post("/api/v1/images/centos:6.6/tag/", {"repository": "copy"}, format="json").status_code == 201
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"olive:wrong").decode())
    assert client.get("/api/v1/images/").status_code == 401


def test_session_changes_need_csrf(make_image, operator) -> None:  # type: ignore[no-untyped-def]
    make_image("centos:6.6")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(operator)
    response = client.post("/api/v1/images/centos:6.6/tag/", {"repository": "copy"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


# --- list -----------------------------------------------------------------------------

def test_list_rows_like_docker_images(make_image, member, client_for) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6", marker="a")
    tag_image(image, "centos:latest")
    dangling = make_image(None, marker="b")
    body = client_for(member).get("/api/v1/images/").json()
    assert body["count"] == 3
    rows = {(r["repository"], r["tag"], r["short_id"]) for r in body["results"]}
    assert rows == {("centos", "6.6", image.short_id), ("centos", "latest", image.short_id),
                    ("<none>", "<none>", dangling.short_id)}
    row = body["results"][0]
    assert set(row) == {"id", "short_id", "repository", "tag", "created", "size", "dangling", "update_available"}


def test_list_filters(make_image, member, client_for) -> None:  # type: ignore[no-untyped-def]
    make_image("centos:6.6", marker="a")
    make_image("ubuntu:14.10", marker="b")
    make_image(None, marker="c")
    client = client_for(member)
    assert [r["repository"] for r in client.get("/api/v1/images/?reference=cent*").json()["results"]] == ["centos"]
    assert [r["tag"] for r in client.get("/api/v1/images/?dangling=true").json()["results"]] == ["<none>"]
    assert client.get("/api/v1/images/?dangling=false").json()["count"] == 2
    response = client.get("/api/v1/images/?dangling=maybe")
    assert response.status_code == 400 and "dangling" in response.json()["detail"]
    response = client.get("/api/v1/images/?reference=[-x]")
    assert response.status_code == 400 and "syntax error" in response.json()["detail"]
    response = client.get("/api/v1/images/?before=nothere")
    assert response.status_code == 404 and response.json()["detail"] == "No such image: nothere"


def test_list_query_count_is_constant(make_image, member, client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(member)
    counts = []
    for n in (2, 15):
        while Image.objects.count() < n:
            make_image(f"img:{Image.objects.count()}", marker=str(Image.objects.count()))
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/images/?page_size=100").json()["count"] == n
        counts.append(len(queries))
    assert counts[0] == counts[1]


# --- detail, inspect, tag -----------------------------------------------------------------

def test_detail_by_name_with_registry_port_and_slashes(make_image, member, client_for) -> None:  # type: ignore[no-untyped-def]
    image = make_image("127.0.0.1:5000/tools/busy:1")
    client = client_for(member)
    for ref in ("127.0.0.1:5000/tools/busy:1", image.short_id, image.id, image.hex[:5]):
        body = client.get(f"/api/v1/images/{ref}/").json()
        assert body["id"] == image.id, ref
    assert body["repo_tags"] == ["127.0.0.1:5000/tools/busy:1"]
    assert body["layers"][0]["diff_id"] == image.layers.get().diff_id
    inspect = client.get("/api/v1/images/127.0.0.1:5000/tools/busy:1/inspect/").json()
    assert inspect["Id"] == image.id and inspect["RepoTags"] == ["127.0.0.1:5000/tools/busy:1"]


def test_inspect_format(make_image, member, client_for) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    client = client_for(member)
    response = client.get(f"/api/v1/images/{image.hex[:4]}/inspect/", {"format": "{{.Os}} {{json .RepoTags}}"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == 'linux ["centos:6.6"]\n'
    response = client.get("/api/v1/images/centos:6.6/inspect/", {"format": "{{bogus .Os}}"})
    assert response.status_code == 400 and 'function "bogus" not defined' in response.json()["detail"]


def test_missing_and_bad_refs(make_image, member, client_for) -> None:  # type: ignore[no-untyped-def]
    make_image("centos:6.6")
    client = client_for(member)
    response = client.get("/api/v1/images/centos:7/")
    assert response.status_code == 404 and response.json() == {"detail": "No such image: centos:7"}
    response = client.get("/api/v1/images/Centos:7/inspect/")
    assert response.status_code == 400 and "must be lowercase" in response.json()["detail"]
    response = client.get("/api/v1/images/a%2F%2Fb/")
    assert response.status_code == 400


def test_tag_endpoint(make_image, operator, client_for) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    client = client_for(operator)
    response = client.post("/api/v1/images/centos:6.6/tag/", {"repository": "127.0.0.1:5000/centos", "tag": "6"},
                           format="json")
    assert response.status_code == 201
    assert response.json() == {"image": image.id, "repository": "127.0.0.1:5000/centos", "tag": "6",
                               "name": "127.0.0.1:5000/centos:6"}
    response = client.post("/api/v1/images/centos:6.6/tag/", {"repository": "Bad"}, format="json")
    assert response.status_code == 400 and "lowercase" in response.json()["detail"]
    response = client.post("/api/v1/images/centos:6.6/tag/", {}, format="json")
    assert response.status_code == 400 and "repository" in response.json()["detail"]
    response = client.post("/api/v1/images/nothere/tag/", {"repository": "x"}, format="json")
    assert response.status_code == 404
    assert Tag.objects.count() == 2


def test_remove_endpoint_reports_docker_records(make_image, operator, client_for) -> None:  # type: ignore[no-untyped-def]
    image = make_image("centos:6.6")
    tag_image(image, "other/centos:1")
    client = client_for(operator)
    response = client.delete(f"/api/v1/images/{image.short_id}/")
    assert response.status_code == 409 and "referenced in multiple repositories" in response.json()["detail"]
    response = client.delete(f"/api/v1/images/{image.short_id}/?force=true")
    assert response.status_code == 200 and {"Deleted": image.id} in response.json()


# --- import ---------------------------------------------------------------------------------

def test_import_upload_answers_202_with_the_job(operator, client_for, store_root: Path,
                                               django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    data = COMPRESSORS["gzip"](simple_rootfs_tar())
    client = client_for(operator)
    upload = io.BytesIO(data)
    upload.name = "rootfs.tar.gz"
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/api/v1/images/import/", {"file": upload, "repository": "ubuntu", "tag": "14.10",
                                                          "message": "from upload"}, format="multipart")
    assert response.status_code == 202
    job = response.json()
    assert job["kind"] == "import" and job["state"] == "queued"
    assert {"id", "kind", "state", "progress", "log", "error", "result"} <= set(job)
    assert job["params"] == {"repository": "ubuntu:14.10", "message": "from upload", "changes": [], "source": "upload"}
    assert len(callbacks) == 1
    kept = list((store_root / "uploads").iterdir())
    assert len(kept) == 1 and kept[0].read_bytes() == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "either a file or a url"),
        ({"url": "ftp://127.0.0.1/x.tar"}, "only http and https"),
        ({"url": "http://127.0.0.1:1/x.tar", "repository": "Bad"}, "must be lowercase"),
        ({"url": "http://127.0.0.1:1/x.tar", "tag": "1"}, "a tag needs a repository"),
        ({"url": "http://127.0.0.1:1/x.tar", "repository": "x:1", "tag": "2"}, "not both"),
    ],
)
def test_import_bad_requests_queue_nothing(operator, client_for, store_root: Path, data: dict, message: str) -> None:  # type: ignore[type-arg]
    response = client_for(operator).post("/api/v1/images/import/", data)
    assert response.status_code == 400 and message in response.json()["detail"]
    assert not Job.objects.exists()
    assert list((store_root / "uploads").iterdir()) == []


def test_import_url_hides_credentials(operator, client_for, outbound_allow: list[str]) -> None:  # type: ignore[no-untyped-def]
    outbound_allow.append("127.0.0.1:1")
    response = client_for(operator).post("/api/v1/images/import/",
                                         {"url": "http://user:s3cret@127.0.0.1:1/x.tar?token=q7-secret-token"})
    assert response.status_code == 202
    assert "s3cret" not in response.content.decode() and "q7-secret-token" not in response.content.decode()


def test_schema_and_docs_are_served(member, client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(member)
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
