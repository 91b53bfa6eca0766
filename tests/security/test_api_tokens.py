"""Issue 10 finding 7, tokens: API tokens are stored as hashes (the database never holds a key),
can expire, and work the same for the REST API and the Docker API."""

from __future__ import annotations

import hashlib
import importlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from imagestore.models import ApiToken

pytestmark = pytest.mark.django_db


def _new_key(capsys, *args: str) -> str:  # type: ignore[no-untyped-def]
    call_command("create_token", *args)
    return str(capsys.readouterr().out.strip())


def _database_dump() -> str:
    """Every row of every table, as text: where a stored key would show."""
    with connection.cursor() as cursor:
        rows = []
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows += [repr(row) for row in cursor.fetchall()]
    return "\n".join(rows)


def test_the_database_never_holds_a_token_key(operator, capsys) -> None:  # type: ignore[no-untyped-def]
    key = _new_key(capsys, "olive", "--name", "ci")
    assert len(key) >= 40
    dump = _database_dump()
    assert key not in dump and key[12:] not in dump
    token = ApiToken.objects.get()
    assert token.digest == hashlib.sha256(key.encode()).hexdigest() and token.name == "ci"
    assert token.expires_at is None
    client = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/jobs/").status_code == 200
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get("/docker/v1.47/images/json").status_code == 200


def test_an_expired_token_is_refused_by_both_apis(operator, capsys) -> None:  # type: ignore[no-untyped-def]
    key = _new_key(capsys, "olive", "--expires-days", "1")
    token = ApiToken.objects.get()
    assert token.expires_at is not None
    assert timedelta(hours=23) < token.expires_at - timezone.now() <= timedelta(days=1)
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/jobs/").status_code == 200
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/jobs/")
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    docker = Client(HTTP_AUTHORIZATION=f"Token {key}").get("/docker/v1.47/images/json")
    assert docker.status_code == 401 and "expired" in docker.json()["message"]


def test_a_deleted_or_inactive_users_token_is_refused(operator, capsys) -> None:  # type: ignore[no-untyped-def]
    key = _new_key(capsys, "olive")
    operator.is_active = False
    operator.save()
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/jobs/").status_code == 401
    operator.is_active = True
    operator.save()
    ApiToken.objects.all().delete()  # revoked
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/jobs/").status_code == 401


def test_the_command_refuses_an_unknown_user(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="no user named"):
        call_command("create_token", "nobody")


def test_plain_text_tokens_of_an_older_install_are_hashed_by_the_migration(operator) -> None:  # type: ignore[no-untyped-def]
    """rest_framework.authtoken kept keys in clear in authtoken_token: the migration moves them
    to hashes (they keep working) and empties that table."""
    old_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp NOT NULL, "
                       "user_id integer NOT NULL)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [old_key, timezone.now(), operator.pk])
    migration = importlib.import_module("imagestore.migrations.0007_hashed_api_tokens")
    migration.hash_old_tokens(apps, SimpleNamespace(connection=connection))  # all it uses of the schema editor
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0
        cursor.execute("DROP TABLE authtoken_token")
    assert old_key not in _database_dump()
    assert APIClient(HTTP_AUTHORIZATION=f"Token {old_key}").get("/api/v1/jobs/").status_code == 200


def test_the_admin_lists_tokens_without_keys_and_revokes_them(staff, operator, capsys) -> None:  # type: ignore[no-untyped-def]
    staff.is_superuser = True
    staff.save()
    key = _new_key(capsys, "olive", "--name", "laptop")
    admin = Client()
    admin.force_login(staff)
    listing = admin.get("/admin/imagestore/apitoken/").content.decode()
    assert "laptop" in listing and key[:12] in listing and key not in listing
    token = ApiToken.objects.get()
    assert admin.get("/admin/imagestore/apitoken/add/").status_code == 403
    assert admin.post(f"/admin/imagestore/apitoken/{token.pk}/delete/", {"post": "yes"}).status_code == 302
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/jobs/").status_code == 401
