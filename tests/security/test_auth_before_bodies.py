"""Issue 10 finding 6: an upload from someone who may not upload is refused before a byte of
it is stored. The bodies are larger than FILE_UPLOAD_MAX_MEMORY_SIZE, so a parsed body would
go to a temporary file in the uploads folder: the tests watch for the multipart parser and
for any temporary upload file, and look at the folder afterwards."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files import uploadedfile
from django.http import multipartparser
from django.test import Client
from django.test.client import encode_multipart
from rest_framework.test import APIClient

from imagestore.models import Job
from imagestore.services.tokens import create_token
from imagestore.services.uploads import keep_stream

pytestmark = pytest.mark.django_db

CSRF = "a" * 32  # a made-up CSRF cookie, and the same value as the form's token


@pytest.fixture
def big_body() -> bytes:
    return b"\0" * (settings.FILE_UPLOAD_MAX_MEMORY_SIZE + (1 << 20))


@pytest.fixture
def body_watch(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts multipart parses and temporary upload files (both pages and DRF use these)."""
    seen = {"parsed": 0, "temp_files": 0}
    parse, init = multipartparser.MultiPartParser.parse, uploadedfile.TemporaryUploadedFile.__init__

    def counting_parse(self: Any) -> Any:
        seen["parsed"] += 1
        return parse(self)

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        seen["temp_files"] += 1
        init(self, *args, **kwargs)

    monkeypatch.setattr(multipartparser.MultiPartParser, "parse", counting_parse)
    monkeypatch.setattr(uploadedfile.TemporaryUploadedFile, "__init__", counting_init)
    return seen


def _nothing_stored(store_root: Path, seen: dict[str, int]) -> None:
    assert seen == {"parsed": 0, "temp_files": 0}
    assert list((store_root / "uploads").iterdir()) == []
    assert not Job.objects.exists()


def _multipart(big_body: bytes, **fields: str) -> tuple[bytes, str]:
    upload = io.BytesIO(big_body)
    upload.name = "rootfs.tar"
    return encode_multipart("BoUnDaRy", {"file": upload, "csrfmiddlewaretoken": CSRF, **fields}), \
        "multipart/form-data; boundary=BoUnDaRy"


def _with_csrf_cookie(client: Client) -> Client:
    client.cookies["csrftoken"] = CSRF
    return client


PAGES = ["/import/", "/load/"]
API = ["/api/v1/images/import/", "/api/v1/images/load/"]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_upload_to_a_page_with_a_made_up_csrf_cookie_stores_nothing(
        url: str, big_body: bytes, body_watch: dict[str, int], store_root: Path) -> None:
    body, content_type = _multipart(big_body, repository="x")
    response = _with_csrf_cookie(Client(enforce_csrf_checks=True)).post(url, body, content_type=content_type)
    _nothing_stored(store_root, body_watch)  # before: parsed into a temporary file, then a redirect
    assert response.status_code == 403


@pytest.mark.parametrize("url", PAGES + API)
def test_read_only_session_upload_is_refused_before_the_body(
        url: str, member, big_body: bytes, body_watch: dict[str, int], store_root: Path) -> None:  # type: ignore[no-untyped-def]
    """A signed-in reader with a valid CSRF token: CSRF's check (page, or DRF's session
    authentication) would read the body before the operator check said no."""
    client = _with_csrf_cookie(APIClient(enforce_csrf_checks=True))
    client.force_login(member)
    body, content_type = _multipart(big_body, repository="x")
    response = client.post(url, body, content_type=content_type)
    assert response.status_code == 403
    _nothing_stored(store_root, body_watch)


@pytest.mark.parametrize("url", API)
@pytest.mark.parametrize("who", ["anonymous", "bad token", "bad password", "reader's token"])
def test_api_upload_without_an_operator_is_refused_before_the_body(
        url: str, who: str, member, big_body: bytes, body_watch: dict[str, int], store_root: Path) -> None:  # type: ignore[no-untyped-def]
    headers = {
        "anonymous": {},
        "bad token": {"HTTP_AUTHORIZATION": "Token ims_not-a-token"},
        "bad password": {"HTTP_AUTHORIZATION": "Basic bWlhOndyb25n"},  # mia:wrong
        "reader's token": {"HTTP_AUTHORIZATION": f"Token {create_token(member)[1]}"},
    }[who]
    body, content_type = _multipart(big_body)
    response = APIClient().post(url, body, content_type=content_type, **headers)
    assert response.status_code == (403 if who == "reader's token" else 401)
    _nothing_stored(store_root, body_watch)


DOCKER = ["/docker/v1.47/images/load", "/docker/v1.47/images/create?fromSrc=-&repo=x",
          "/docker/images/load?quiet=1"]


@pytest.mark.parametrize("url", [*DOCKER, "PUT /docker/v1.47/containers/c1/archive?path=/tmp"])
@pytest.mark.parametrize("who", ["anonymous", "reader's token", "session operator"])
def test_docker_api_upload_without_an_operators_token_is_refused(
        url: str, who: str, member, operator, big_body: bytes, store_root: Path) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    if who == "reader's token":
        client = Client(HTTP_AUTHORIZATION=f"Token {create_token(member)[1]}")
    elif who == "session operator":
        client.force_login(operator)  # the Docker API takes tokens only
    method, _, url = url.rpartition(" ")
    response = getattr(client, (method or "post").lower())(url, big_body, content_type="application/x-tar")
    assert response.status_code == 401 and "message" in response.json()
    assert list((store_root / "uploads").iterdir()) == [] and not Job.objects.exists()


@pytest.mark.parametrize("who", ["anonymous", "reader's session"])
def test_a_copy_into_a_container_through_the_rest_api_is_refused_before_the_body(
        who: str, member, big_body: bytes, store_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from rest_framework.request import Request

    read = []
    monkeypatch.setattr(Request, "_load_data_and_files", lambda self: read.append(1))  # any parse of the body
    client = _with_csrf_cookie(APIClient(enforce_csrf_checks=True))
    if who == "reader's session":
        client.force_login(member)
    response = client.put("/api/v1/containers/c1/archive/?path=/tmp", big_body, content_type="application/x-tar",
                          HTTP_X_CSRFTOKEN=CSRF)
    assert response.status_code == (403 if who == "reader's session" else 401) and read == []
    assert list((store_root / "uploads").iterdir()) == []


def test_a_file_part_sent_to_any_other_form_is_not_stored(
        member, big_body: bytes, body_watch: dict[str, int], store_root: Path) -> None:  # type: ignore[no-untyped-def]
    """Multipart to a form that takes no upload (the sign-in page): refused at the file part."""
    body, content_type = _multipart(big_body, username="mia", password="pw-member")
    response = _with_csrf_cookie(Client(enforce_csrf_checks=True)).post("/accounts/login/", body,
                                                                      content_type=content_type)
    assert response.status_code == 403
    assert body_watch["temp_files"] == 0 and list((store_root / "uploads").iterdir()) == []


# --- the upload size limit --------------------------------------------------------------

@pytest.fixture
def small_limit(settings) -> int:  # type: ignore[no-untyped-def]
    settings.IMAGESTORE_MAX_UPLOAD_SIZE = 1 << 20
    return 1 << 20


@pytest.mark.parametrize("url", PAGES + API)
def test_an_operators_upload_past_the_limit_is_refused_from_its_length(
        url: str, operator, small_limit: int, big_body: bytes, body_watch: dict[str, int],
        store_root: Path) -> None:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_login(operator)
    body, content_type = _multipart(big_body, repository="x")
    response = client.post(url, body, content_type=content_type)
    assert response.status_code == 413 and b"IMAGESTORE_MAX_UPLOAD_SIZE" in response.content
    _nothing_stored(store_root, body_watch)


def test_a_chunked_docker_upload_stops_at_the_limit(operator, small_limit: int, big_body: bytes,
                                                    store_root: Path) -> None:  # type: ignore[no-untyped-def]
    """The docker CLI sends `docker load` and `docker import -` chunked: no length up front."""
    client = Client(HTTP_AUTHORIZATION=f"Token {create_token(operator)[1]}")
    response = client.post("/docker/v1.47/images/load", big_body, content_type="application/x-tar",
                           HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH="")
    assert response.status_code == 413 and "IMAGESTORE_MAX_UPLOAD_SIZE" in response.json()["message"]
    assert list((store_root / "uploads").iterdir()) == [] and not Job.objects.exists()


def test_keep_stream_leaves_nothing_past_the_limit(store_root: Path) -> None:
    from imagestore.errors import TooLarge

    with pytest.raises(TooLarge):
        keep_stream(io.BytesIO(b"x" * 3000), limit=2000)
    assert list((store_root / "uploads").iterdir()) == []
    kept = keep_stream(io.BytesIO(b"x" * 2000), limit=2000)
    assert kept.stat().st_size == 2000


def test_upload_limits_come_from_the_environment() -> None:
    """DATA_UPLOAD_MAX_MEMORY_SIZE and IMAGESTORE_MAX_UPLOAD_SIZE are settings read with the strict helpers."""
    import subprocess
    import sys

    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.DATA_UPLOAD_MAX_MEMORY_SIZE, s.IMAGESTORE_MAX_UPLOAD_SIZE)")
    env = _settings_env(DATA_UPLOAD_MAX_MEMORY_SIZE="2000000", IMAGESTORE_MAX_UPLOAD_SIZE="3000000")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2000000", "3000000"]
    env["IMAGESTORE_MAX_UPLOAD_SIZE"] = "lots"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "IMAGESTORE_MAX_UPLOAD_SIZE='lots' is not an integer" in bad.stderr


def _settings_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY", "IMAGESTORE_ROOT")}
    env.update(DJANGO_SETTINGS_MODULE="dashboard.test_settings", REDIS_URL="redis://127.0.0.1:1/0", **extra)
    return env

