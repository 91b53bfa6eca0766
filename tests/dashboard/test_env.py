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


def _settings_process(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    code = ("import django, os; django.setup(); from django.conf import settings; "
            "print(settings.CELERY_BROKER_URL); print(settings.DEBUG)")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "dashboard.settings", "VAR_DIR": str(tmp_path), **env},
    )


def test_bad_debug_value_stops_start_up(tmp_path: Path) -> None:
    result = _settings_process(tmp_path, DEBUG="perhaps")
    assert result.returncode != 0 and "DEBUG='perhaps' is not a boolean" in result.stderr


def test_unreachable_redis_falls_back_to_the_embedded_broker(tmp_path: Path) -> None:
    result = _settings_process(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["filesystem://", "False"]
    assert (tmp_path / "secret_key").exists()


def test_reachable_redis_is_the_broker(tmp_path: Path) -> None:
    result = _settings_process(tmp_path, REDIS_URL="redis://127.0.0.1:6379/15")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "redis://127.0.0.1:6379/15"
