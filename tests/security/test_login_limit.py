"""Issue 10 finding 7 (login throttling): after LOGIN_FAILURE_LIMIT failed sign-ins for one
username from one address, even the right password is refused there until the window ends,
on the sign-in page and over HTTP Basic; bad API tokens are limited per address."""

from __future__ import annotations

import base64

import pytest
from django.test import Client
from rest_framework.test import APIClient

from imagestore.services.tokens import create_token

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def limit(settings) -> int:  # type: ignore[no-untyped-def]
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_WINDOW = 60
    return 3


def _sign_in(password: str, address: str = "127.0.0.1") -> tuple[int, str]:
    response = Client(REMOTE_ADDR=address).post("/accounts/login/", {"username": "mia", "password": password})
    return response.status_code, response.content.decode()


def test_the_sign_in_page_refuses_after_the_limit(member, limit: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(limit):
        assert _sign_in("wrong")[0] == 200
    status, body = _sign_in("pw-member")
    assert status == 200 and "Too many failed sign-ins" in body  # the right password, refused
    assert _sign_in("pw-member", address="127.0.0.2")[0] == 302  # another address is not locked out


def test_a_success_before_the_limit_starts_the_count_again(member, limit: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(limit - 1):
        _sign_in("wrong")
    assert _sign_in("pw-member")[0] == 302
    for _ in range(limit - 1):
        _sign_in("wrong")
    assert _sign_in("pw-member")[0] == 302


def test_the_limit_ends_with_its_window(member, limit: int, settings) -> None:  # type: ignore[no-untyped-def]
    import time

    settings.LOGIN_FAILURE_WINDOW = 1
    for _ in range(limit):
        _sign_in("wrong")
    assert _sign_in("pw-member")[0] == 200
    time.sleep(1.2)
    assert _sign_in("pw-member")[0] == 302


def _basic(password: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"mia:{password}".encode()).decode()}


def test_http_basic_refuses_after_the_limit(member, limit: int) -> None:  # type: ignore[no-untyped-def]
    assert APIClient().get("/api/v1/jobs/", **_basic("pw-member")).status_code == 200
    for _ in range(limit):
        assert APIClient().get("/api/v1/jobs/", **_basic("wrong")).status_code == 401
    assert APIClient().get("/api/v1/jobs/", **_basic("pw-member")).status_code == 401


def test_bad_tokens_are_limited_per_address(member, limit: int) -> None:  # type: ignore[no-untyped-def]
    _, key = create_token(member)
    for i in range(limit):
        assert APIClient().get("/api/v1/jobs/", HTTP_AUTHORIZATION=f"Token ims_guess{i}").status_code == 401
    response = APIClient().get("/api/v1/jobs/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 429 and "Too many invalid tokens" in response.json()["detail"]
    docker = Client(HTTP_AUTHORIZATION=f"Token {key}").get("/docker/v1.47/images/json")
    assert docker.status_code == 401 and "Too many invalid tokens" in docker.json()["message"]
    other = APIClient(REMOTE_ADDR="127.0.0.9").get("/api/v1/jobs/", HTTP_AUTHORIZATION=f"Token {key}")
    assert other.status_code == 200


def test_sign_in_still_works_when_the_limiters_cache_is_down(member, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Redis down: the password check decides alone (logged), rather than every sign-in failing."""
    from django.core.cache import cache

    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("redis is down")

    for method in ("get", "add", "incr", "set", "delete"):
        monkeypatch.setattr(cache, method, down)
    assert _sign_in("wrong")[0] == 200
    assert _sign_in("pw-member")[0] == 302
    assert APIClient().get("/api/v1/jobs/", **_basic("pw-member")).status_code == 200
