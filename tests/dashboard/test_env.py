"""Settings helpers fail loudly on bad values instead of guessing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from dashboard.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("0", False), ("YES", True), ("off", False), ("", True)])
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw: str, value: bool) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", True) is value


@pytest.mark.parametrize("raw", ["maybe", "2", "tru"])
def test_env_bool_refuses_anything_else(monkeypatch, raw: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("X_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG", False)


def test_env_int_checks_type_and_minimum(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("X_NUM", "12")
    assert env_int("X_NUM", 1) == 12
    monkeypatch.setenv("X_NUM", "twelve")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "-1")
    with pytest.raises(ImproperlyConfigured, match="minimum"):
        env_int("X_NUM", 1, minimum=0)


def test_env_list_splits_on_commas(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("X_LIST", " a, b ,,c")
    assert env_list("X_LIST") == ["a", "b", "c"]


def _settings_process(tmp_path: Path, *names: str, **env: str) -> subprocess.CompletedProcess[str]:
    names = names or ("CELERY_BROKER_URL", "DEBUG")
    code = ("import django, os; django.setup(); from django.conf import settings; "
            + "; ".join(f"print(settings.{name})" for name in names))
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "dashboard.settings", "VAR_DIR": str(tmp_path), **env},
    )


def test_bad_debug_value_stops_start_up(tmp_path: Path) -> None:
    result = _settings_process(tmp_path, DEBUG="perhaps")
    assert result.returncode != 0 and "DEBUG='perhaps' is not a boolean" in result.stderr


def test_the_broker_is_what_is_configured_even_when_it_is_down(tmp_path: Path) -> None:
    """Decided by configuration, never by a probe: every process of an installation agrees
    (a worker then refuses to start, see tests/integration/test_job_queue.py)."""
    result = _settings_process(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["redis://127.0.0.1:1/0", "False"]
    assert (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("env", [{"REDIS_URL": ""}, {"CELERY_BROKER_URL": "filesystem://"}])
def test_the_embedded_broker_is_used_only_when_asked_for(tmp_path: Path, env: dict[str, str]) -> None:
    result = _settings_process(tmp_path, "CELERY_BROKER_URL", "BROKER_DESCRIPTION", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["filesystem://", f"embedded filesystem broker in {tmp_path / 'broker'}"]


def test_reachable_redis_is_the_broker(tmp_path: Path) -> None:
    result = _settings_process(tmp_path, REDIS_URL="redis://127.0.0.1:6379/15")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "redis://127.0.0.1:6379/15"


def test_the_broker_password_is_not_shown(tmp_path: Path) -> None:
    result = _settings_process(tmp_path, "BROKER_DESCRIPTION", REDIS_URL="redis://:s3cret@127.0.0.1:6379/0")
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in result.stdout


def test_each_installation_has_its_own_queue(tmp_path: Path) -> None:
    """Two installations sharing a Redis must never take each other's jobs: the queue is
    named from the database and the data folder, or set with CELERY_QUEUE."""

    def queue(**env: str) -> str:
        result = _settings_process(tmp_path, "CELERY_TASK_DEFAULT_QUEUE", **env)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    a = queue(DATABASE_URL=f"sqlite:///{tmp_path}/a.sqlite3", IMAGESTORE_ROOT=str(tmp_path / "a"))
    b = queue(DATABASE_URL=f"sqlite:///{tmp_path}/b.sqlite3", IMAGESTORE_ROOT=str(tmp_path / "b"))
    c = queue(DATABASE_URL="postgres://u@db.example:5432/a", IMAGESTORE_ROOT=str(tmp_path / "a"))
    assert len({a, b, c}) == 3 and "celery" not in {a, b, c}
    assert a.startswith("imagestore-")
    assert queue(DATABASE_URL=f"sqlite:///{tmp_path}/a.sqlite3", IMAGESTORE_ROOT=str(tmp_path / "a")) == a
    assert queue(CELERY_QUEUE="shared-by-choice") == "shared-by-choice"
