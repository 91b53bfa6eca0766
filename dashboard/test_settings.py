"""Settings for the test suite: its own data folder and Redis database, then the real settings."""

import os
from pathlib import Path

_BASE = Path(__file__).resolve().parent.parent
os.environ.setdefault("VAR_DIR", str(_BASE / "var" / "test"))
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("JOB_PROGRESS_INTERVAL_MS", "100")
# A queue of this test run's own (its workers inherit the name), so two runs sharing one
# Redis, a developer's and CI's, never take each other's tasks. Under pytest-xdist each test
# process has its own: xdist's processes inherit the controller's environment, so the name is
# made again wherever the process's xdist worker id differs from the one it was made for.
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if "CELERY_TEST_QUEUE" not in os.environ or os.environ.get("CELERY_TEST_QUEUE_WORKER", _XDIST_WORKER) != _XDIST_WORKER:
    os.environ["CELERY_TEST_QUEUE"] = f"imagestore-tests-{os.getpid()}{'-' + _XDIST_WORKER if _XDIST_WORKER else ''}"
    os.environ["CELERY_TEST_QUEUE_WORKER"] = _XDIST_WORKER

from .settings import *  # noqa: E402,F403

CELERY_TASK_DEFAULT_QUEUE = os.environ["CELERY_TEST_QUEUE"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
# The sign-in limiter's counters in this process's memory: never the shared Redis, which a
# cache.clear() between tests would flush.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The metrics folder per test process too (settings made it from the installation's queue, which
# every xdist process shares): one process's requests never move another's counters.
METRICS_DIR = private_dir(VAR_DIR / "metrics" / CELERY_TASK_DEFAULT_QUEUE)  # noqa: F405
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
