"""HTTP Basic auth remembers a successful check briefly, and only that."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client

from imagestore.api import auth_basic

pytestmark = pytest.mark.django_db


def _basic(username: str, password: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


@pytest.fixture(autouse=True)
def checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Each full password check (the slow hash), by the password tried."""
    auth_basic.forget_all()
    seen: list[str] = []
    original = User.check_password

    def counted(self: User, raw_password: str) -> bool:
        seen.append(raw_password)
        return original(self, raw_password)

    monkeypatch.setattr(User, "check_password", counted)
    yield seen
    auth_basic.forget_all()


def _get(headers: dict[str, str], client: Client | None = None) -> int:
    return (client or Client()).get("/api/v1/images/", **headers).status_code  # type: ignore[arg-type]


def test_a_good_check_is_remembered_so_the_next_requests_hash_nothing(member: User, checks: list[str]) -> None:
    for _ in range(5):
        assert _get(_basic("mia", "pw-member")) == 200
    assert checks == ["pw-member"]


def test_a_wrong_password_is_never_remembered(member: User, checks: list[str]) -> None:
    assert _get(_basic("mia", "pw-member")) == 200
    for _ in range(3):
        assert _get(_basic("mia", "wrong")) == 401
    assert checks == ["pw-member", "wrong", "wrong", "wrong"]
    assert _get(_basic("mia", "pw-member")) == 200
    assert _get(_basic("nobody", "pw-member")) == 401  # another name, same password: its own check
    assert len(checks) == 4 and all(key.isalnum() for key in auth_basic._checks)  # no password kept


def test_a_password_change_ends_the_remembered_check(member: User, checks: list[str]) -> None:
    assert _get(_basic("mia", "pw-member")) == 200
    assert _get(_basic("mia", "pw-member")) == 200
    assert checks == ["pw-member"]
    member.set_password("pw-new")
    member.save()
    assert _get(_basic("mia", "pw-member")) == 401
    assert _get(_basic("mia", "pw-new")) == 200
    assert _get(_basic("mia", "pw-new")) == 200
    assert checks == ["pw-member", "pw-member", "pw-new"]
    member.is_active = False
    member.save()
    assert _get(_basic("mia", "pw-new")) == 401


def test_logout_forgets_the_remembered_check(member: User, checks: list[str]) -> None:
    assert _get(_basic("mia", "pw-member")) == 200
    assert _get(_basic("mia", "pw-member")) == 200
    assert checks == ["pw-member"]
    browser = Client()
    browser.force_login(member)
    browser.logout()  # user_logged_out
    assert _get(_basic("mia", "pw-member")) == 200
    assert checks == ["pw-member", "pw-member"]


def test_remembered_checks_expire(member: User, checks: list[str], settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert _get(_basic("mia", "pw-member")) == 200
    now = auth_basic.time.monotonic()
    monkeypatch.setattr(auth_basic.time, "monotonic", lambda: now + settings.BASIC_AUTH_CACHE_SECONDS + 1)
    assert _get(_basic("mia", "pw-member")) == 200
    assert checks == ["pw-member", "pw-member"]
    settings.BASIC_AUTH_CACHE_SECONDS = 0  # switched off: every request checks
    assert _get(_basic("mia", "pw-member")) == 200 and _get(_basic("mia", "pw-member")) == 200
    assert len(checks) == 4


@pytest.mark.django_db(transaction=True)
def test_requests_arriving_together_wait_for_one_check(member: User, checks: list[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import threading
    import time

    from django.db import connection

    counted = User.check_password

    def slow(self: User, raw_password: str) -> bool:
        time.sleep(0.3)  # as a real hash is
        return counted(self, raw_password)

    monkeypatch.setattr(User, "check_password", slow)
    users: list[User] = []

    def request() -> None:
        try:
            users.append(auth_basic.CachedBasicAuthentication().authenticate_credentials("mia", "pw-member")[0])
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert [u.pk for u in users] == [member.pk] * 8
    assert checks == ["pw-member"]
