"""Settings, read from the environment through strict helpers (dashboard.env).

Embedded default: SQLite and the data folder under var/, Redis when reachable and
an embedded filesystem broker otherwise. Production: DATABASE_URL, REDIS_URL,
IMAGESTORE_ROOT on storage every worker sees, SECRET_KEY.
"""

from __future__ import annotations

import logging
import secrets
import socket
from pathlib import Path
from urllib.parse import urlparse

import environ

from .env import env_bool, env_int, env_list, env_path, env_str

log = logging.getLogger("dashboard")

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("VAR_DIR", BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY", "")
    if key:
        return key
    # Embedded default: generate once and keep it, so sessions survive restarts.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "imagestore",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "dashboard.wsgi.application"

_database_url = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
try:
    DATABASES = {"default": environ.Env.db_url_config(_database_url)}
except Exception as exc:  # django-environ raises several types for a bad URL
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a worker process in the tests sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    # Writers queue (BEGIN IMMEDIATE) instead of failing with "database is locked"
    # when the web server and a worker write at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=30, transaction_mode="IMMEDIATE")
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60, minimum=0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/images/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Served by WhiteNoise straight from the apps' and the project's static folders, so
# `make run` and the tests need no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- the image store -------------------------------------------------------------
IMAGESTORE_ROOT = env_path("IMAGESTORE_ROOT", VAR_DIR / "imagestore")
# Bounds on what one import may hold, so a compression bomb ends with a clear error.
IMAGESTORE_MAX_LAYER_SIZE = env_int("IMAGESTORE_MAX_LAYER_SIZE", 256 << 30, minimum=1)
# ISA-L's levels: 0 (fastest) to 3 (smallest).
IMAGESTORE_GZIP_LEVEL = env_int("IMAGESTORE_GZIP_LEVEL", 1, minimum=0, maximum=3)
IMAGESTORE_URL_TIMEOUT = env_int("IMAGESTORE_URL_TIMEOUT", 60, minimum=1)
# A running job whose heartbeat is older than this is failed as abandoned.
JOB_STALE_AFTER = env_int("JOB_STALE_AFTER", 300, minimum=10)
JOB_PROGRESS_INTERVAL = float(env_int("JOB_PROGRESS_INTERVAL_MS", 500, minimum=0)) / 1000

# Uploads land on the data folder's filesystem, so keeping one for its job is a rename.
(IMAGESTORE_ROOT / "uploads").mkdir(parents=True, exist_ok=True)
FILE_UPLOAD_TEMP_DIR = str(IMAGESTORE_ROOT / "uploads")
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- registries ---------------------------------------------------------------------
# Like registry-mirrors in Docker's daemon.json: tried in order for docker.io, then Docker Hub.
REGISTRY_MIRRORS = env_list("REGISTRY_MIRRORS", [])
# host:port spoken to over plain HTTP; loopback registries always are.
INSECURE_REGISTRIES = env_list("INSECURE_REGISTRIES", [])
DOCKER_HUB_INDEX_URL = env_str("DOCKER_HUB_INDEX_URL", "https://index.docker.io")
PULL_CONCURRENCY = env_int("PULL_CONCURRENCY", 3, minimum=1)
PUSH_CHUNK_SIZE = env_int("PUSH_CHUNK_SIZE", 16 << 20, minimum=1 << 20)
# Secrets of registry credentials are encrypted with a key derived from this (or SECRET_KEY).
CREDENTIALS_KEY = env_str("CREDENTIALS_KEY", "")

# --- containers -----------------------------------------------------------------------
# The OCI runtime on PATH that runs containers; without it they can still be created,
# changed and committed.
CONTAINER_RUNTIME = env_str("CONTAINER_RUNTIME", "runc")
# A container's writable root: an overlay mount over the shared snapshot where the kernel
# allows it ("auto"), or always "overlay", or a "copy" of the snapshot.
CONTAINER_ROOTFS = env_str("CONTAINER_ROOTFS", "auto")
if CONTAINER_ROOTFS not in ("auto", "overlay", "copy"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"CONTAINER_ROOTFS={CONTAINER_ROOTFS!r} must be auto, overlay or copy")

# The Docker Engine API endpoint under /docker/ (token of an operator required).
DOCKER_API_ENABLED = env_bool("DOCKER_API_ENABLED", True)

# --- Celery -----------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False


CELERY_EMBEDDED_BROKER_DIR = VAR_DIR / "broker"
if env_str("CELERY_BROKER_URL", ""):
    CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
    BROKER_DESCRIPTION = "CELERY_BROKER_URL"
elif _reachable(REDIS_URL):
    CELERY_BROKER_URL = REDIS_URL
    BROKER_DESCRIPTION = f"Redis at {REDIS_URL}"
else:
    # No Redis: an embedded broker in a folder, enough for one machine.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_EMBEDDED_BROKER_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_EMBEDDED_BROKER_DIR),
        "data_folder_out": str(CELERY_EMBEDDED_BROKER_DIR),
        "store_processed": False,
    }
    BROKER_DESCRIPTION = (
        f"embedded filesystem broker in {CELERY_EMBEDDED_BROKER_DIR} (Redis at {REDIS_URL} is not reachable)"
    )

CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-jobs": {"task": "imagestore.tasks.sweep_stale_jobs", "schedule": 60.0},
    "collect-garbage": {"task": "imagestore.tasks.collect_garbage", "schedule": 3600.0},
}

# --- REST API ---------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first, so an anonymous request is told 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["imagestore.api.permissions.IsOperatorOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "imagestore.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "imagestore.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "imagestore.api.errors.exception_handler",
    # ``?format=`` is the inspect template (as ``docker inspect -f``), not a renderer.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Image dashboard API",
    "DESCRIPTION": "Pull, list, tag, inspect, import and manage container images.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PREPROCESSING_HOOKS": ["imagestore.api.schema.spell_out_action_routes"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "imagestore.api.schema.document_errors"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
