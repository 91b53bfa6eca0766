"""Settings for the test suite: its own data folder and Redis database, then the real settings."""

import os
from pathlib import Path

_BASE = Path(__file__).resolve().parent.parent
os.environ.setdefault("VAR_DIR", str(_BASE / "var" / "test"))
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("JOB_PROGRESS_INTERVAL_MS", "100")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
