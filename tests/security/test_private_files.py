"""Issue 10 finding 7, files: the data folder, the image store and uploads 0700, the SQLite
database 0600, the secret key 0600 from its first byte; an old open install is tightened."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dashboard import privacy

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _start_settings(var: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """The real settings loaded in a fresh process, as `make run` and the worker load them, under
    the usual umask 022 (so what is private is made so by the code, not by the umask)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "SECRET_KEY", "IMAGESTORE_ROOT", "VAR_DIR")}
    env.update(DJANGO_SETTINGS_MODULE="dashboard.settings", VAR_DIR=str(var), REDIS_URL="redis://127.0.0.1:1/0",
               **extra)
    code = ("import os; os.umask(0o022); import django; django.setup(); "
            "from django.db import connection; connection.ensure_connection(); "
            "connection.cursor().execute('CREATE TABLE IF NOT EXISTS t (x)')")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True, timeout=60)


def test_a_new_install_is_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    _start_settings(var)
    assert _mode(var) == 0o700
    assert _mode(var / "imagestore") == 0o700 and _mode(var / "imagestore" / "uploads") == 0o700
    assert _mode(var / "db.sqlite3") == 0o600
    assert _mode(var / "secret_key") == 0o600 and len((var / "secret_key").read_text().strip()) >= 50


def test_an_open_install_is_tightened_at_start_up(tmp_path: Path) -> None:
    var = tmp_path / "var"
    (var / "imagestore" / "uploads").mkdir(parents=True)
    for folder in (var, var / "imagestore", var / "imagestore" / "uploads"):
        folder.chmod(0o755)
    (var / "db.sqlite3").touch(mode=0o644)
    (var / "db.sqlite3").chmod(0o644)
    (var / "secret_key").write_text("an-old-key-kept-as-it-is")
    (var / "secret_key").chmod(0o644)
    _start_settings(var)
    assert [_mode(p) for p in (var, var / "imagestore", var / "imagestore" / "uploads")] == [0o700] * 3
    assert _mode(var / "db.sqlite3") == 0o600 and _mode(var / "secret_key") == 0o600
    assert (var / "secret_key").read_text() == "an-old-key-kept-as-it-is"


def test_private_dir_and_private_file_helpers(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        made = privacy.private_dir(tmp_path / "a" / "b")
        assert _mode(made) == 0o700
        (tmp_path / "open").mkdir(mode=0o777)
        assert _mode(privacy.private_dir(tmp_path / "open")) == 0o700
        db = privacy.private_file(tmp_path / "db.sqlite3")
        assert _mode(db) == 0o600 and db.read_bytes() == b""
        wal = tmp_path / "db.sqlite3-wal"
        wal.write_bytes(b"x")
        wal.chmod(0o644)
        privacy.tighten_sqlite(db)
        assert _mode(wal) == 0o600
    finally:
        os.umask(old)


def test_the_secret_key_is_0600_and_complete_before_it_appears(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """At the moment the key file gets its name, it already is 0600 and holds the whole key
    (never a window where it is world-readable or half-written), and it is not replaced later."""
    tmp_path = tmp_path / "var"
    tmp_path.mkdir()
    seen = []
    real_link = os.link

    def watching_link(source: str | Path, target: str | Path, *args: object, **kwargs: object) -> None:
        seen.append((_mode(Path(source)), Path(source).read_text()))
        real_link(source, target)

    monkeypatch.setattr(os, "link", watching_link)
    old = os.umask(0o000)  # even with a careless umask
    try:
        key = privacy.secret_once(tmp_path / "secret_key")
    finally:
        os.umask(old)
    assert len(seen) == 1 and seen[0] == (0o600, key) and len(key) >= 50
    assert _mode(tmp_path / "secret_key") == 0o600
    assert privacy.secret_once(tmp_path / "secret_key") == key  # kept, not regenerated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]  # no temporary file left


def test_concurrent_start_ups_agree_on_one_secret_key(tmp_path: Path) -> None:
    code = "import sys; from dashboard.privacy import secret_once; from pathlib import Path; " \
           "print(secret_once(Path(sys.argv[1])))"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "secret_key")], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for _ in range(6)]
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(keys) == 1 and keys == {(tmp_path / "secret_key").read_text().strip()}
