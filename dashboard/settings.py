"""Settings, read from the environment through strict helpers (dashboard.env).

Embedded default: SQLite and the data folder under var/, Redis on loopback (or the
embedded filesystem broker when REDIS_URL is set empty). Production: DATABASE_URL, REDIS_URL,
IMAGESTORE_ROOT on storage every worker sees, SECRET_KEY.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import environ
from kombu.utils.url import maybe_sanitize_url

from .env import env_bool, env_int, env_list, env_path, env_str
from .privacy import private_dir, secret_once, tighten_sqlite

log = logging.getLogger("dashboard")

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("VAR_DIR", BASE_DIR / "var")
# 0700, and tightened if an older version left it open: it holds the database, the secret
# key, uploads and unpacked images (setuid binaries, device nodes) that no other local user
# may reach. See README "Security".
private_dir(VAR_DIR)

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY", "")
    if key:
        return key
    # Embedded default: generate once and keep it (0600 from its first byte), so sessions
    # survive restarts.
    return secret_once(VAR_DIR / "secret_key")


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
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "imagestore",
    # The browser pages: views, forms, URLs, templates and static files of their own.
    "ui",
]

MIDDLEWARE = [
    # Outermost: every request counted and timed, refused ones included.
    "imagestore.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the language switch's cookie, else Accept-Language, else English.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF: its check reads request.POST, which would store an upload's body.
    "imagestore.uploadguard.UploadGuardMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Who acts, for the audit trail (the user is read when an event is recorded).
    "imagestore.middleware.AuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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
                "ui.navigation.navigation",
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
    _sqlite_file = Path(DATABASES["default"]["NAME"])
    if str(_sqlite_file) != ":memory:" and _sqlite_file.parent.is_dir():
        tighten_sqlite(_sqlite_file)  # 0600: it holds password hashes and session keys
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60, minimum=0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en"
# The pages (and the REST API's error messages) in English and in Chinese (locale/zh_Hans/);
# `make run` and `make test` compile the catalogue.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
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
private_dir(IMAGESTORE_ROOT)
# The most one layer may hold uncompressed (import, load, pull; every codec), so a
# compression bomb (402 bytes of bzip2 are 512 MiB) ends with a clear error instead of
# filling the disk. 16 GiB: larger than any real-world layer (the biggest CUDA / ML
# layers are a few GiB), smaller than the disk a store lives on.
IMAGESTORE_MAX_LAYER_SIZE = env_int("IMAGESTORE_MAX_LAYER_SIZE", 16 << 30, minimum=1)
# ISA-L's levels: 0 (fastest) to 3 (smallest).
IMAGESTORE_GZIP_LEVEL = env_int("IMAGESTORE_GZIP_LEVEL", 1, minimum=0, maximum=3)
# Record every layer's entries as it arrives (imagestore.oci.layerindex); off only to measure its cost.
IMAGESTORE_INDEX_LAYERS = env_bool("IMAGESTORE_INDEX_LAYERS", True)
IMAGESTORE_URL_TIMEOUT = env_int("IMAGESTORE_URL_TIMEOUT", 60, minimum=1)
# A running job whose heartbeat is older than this is failed as abandoned.
JOB_STALE_AFTER = env_int("JOB_STALE_AFTER", 300, minimum=10)
JOB_PROGRESS_INTERVAL = float(env_int("JOB_PROGRESS_INTERVAL_MS", 500, minimum=0)) / 1000
# Housekeeping (services/gc.py): unreferenced blobs, temp files, orphan folders younger
# than the grace are kept (a writer may be about to reference them); a saved archive
# is kept this long after its save job succeeded, for downloading.
GC_GRACE_SECONDS = env_int("GC_GRACE_SECONDS", 3600, minimum=0)
EXPORT_RETENTION = env_int("EXPORT_RETENTION", 86400, minimum=0)
# Audit events older than this many days are removed by the hourly housekeeping (0: kept forever).
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365, minimum=0)

# Uploads land on the data folder's filesystem, so keeping one for its job is a rename.
private_dir(IMAGESTORE_ROOT / "uploads")
FILE_UPLOAD_TEMP_DIR = str(IMAGESTORE_ROOT / "uploads")
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
# The largest upload (import, load, copy into a container) accepted: refused with 413 from
# its Content-Length before a byte is stored, and stopped at this size while streaming.
IMAGESTORE_MAX_UPLOAD_SIZE = env_int("IMAGESTORE_MAX_UPLOAD_SIZE", 16 << 30, minimum=1 << 20)
# Form and JSON bodies (not files) held in memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 << 20, minimum=1 << 16)
FILE_UPLOAD_HANDLERS = [
    "imagestore.uploadguard.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# --- registries ---------------------------------------------------------------------
# Like registry-mirrors in Docker's daemon.json: tried in order for docker.io, then Docker Hub.
REGISTRY_MIRRORS = env_list("REGISTRY_MIRRORS", [])
# host:port spoken to over plain HTTP; loopback registries always are.
INSECURE_REGISTRIES = env_list("INSECURE_REGISTRIES", [])
DOCKER_HUB_INDEX_URL = env_str("DOCKER_HUB_INDEX_URL", "https://index.docker.io")
# Outbound policy (imagestore/oci/outbound.py): loopback, private and link-local addresses the
# server may connect to for pulls, pushes, logins, searches and URL imports: host[:port], an
# address or a CIDR, comma-separated. The hosts above (mirrors, insecure registries, the search
# index) are allowed too; cloud metadata addresses never are.
OUTBOUND_ALLOW = env_list("OUTBOUND_ALLOW", [])
PULL_CONCURRENCY = env_int("PULL_CONCURRENCY", 3, minimum=1)
PUSH_CHUNK_SIZE = env_int("PUSH_CHUNK_SIZE", 16 << 20, minimum=1 << 20)
# --- this store as a registry at /v2/ (imagestore.registryapi) -------------------------------
REGISTRY_API_ENABLED = env_bool("REGISTRY_API_ENABLED", True)
# The registry name of repositories pushed to /v2/ (what `docker push HOST:PORT/team/app` calls
# it); empty: the Host the client names this dashboard by.
REGISTRY_NAME = env_str("REGISTRY_NAME", "")
# Lifetime of the bearer tokens /v2/token issues (seconds).
REGISTRY_TOKEN_SECONDS = env_int("REGISTRY_TOKEN_SECONDS", 300, minimum=30, maximum=86400)
# Pull-through cache: a /v2/ pull of a Docker Hub name the store lacks fetches it from here.
REGISTRY_PROXY_REMOTE = env_str("REGISTRY_PROXY_REMOTE", "")
# Which Docker Hub namespaces go through it (library: the official images; * for all).
REGISTRY_PROXY_NAMESPACES = env_list("REGISTRY_PROXY_NAMESPACES", ["library"])
# Anonymous pulls of those names (for other hosts' registry-mirrors, whose daemons send no login).
REGISTRY_PROXY_ANONYMOUS = env_bool("REGISTRY_PROXY_ANONYMOUS", False)
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
# Processes (and threads) a container may hold unless its create asks otherwise (Docker's
# --pids-limit; 0 = unlimited): a fork bomb inside stops there instead of at the host's limit.
CONTAINER_PIDS_LIMIT = env_int("CONTAINER_PIDS_LIMIT", 1024, minimum=0)
# The network a container gets when its create names none: "bridge" (its own namespace,
# outbound through pasta, no way to the host's loopback) or "none" (loopback only).
# "host" is never a default: an operator has to ask for it per container.
CONTAINER_NETWORK_DEFAULT = env_str("CONTAINER_NETWORK_DEFAULT", "bridge")
if CONTAINER_NETWORK_DEFAULT not in ("bridge", "none"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"CONTAINER_NETWORK_DEFAULT={CONTAINER_NETWORK_DEFAULT!r} must be bridge or none")

# The Docker Engine API endpoint under /docker/ (token of an operator required).
DOCKER_API_ENABLED = env_bool("DOCKER_API_ENABLED", True)

# --- serving -------------------------------------------------------------------------
# A progress stream or ``logs?follow`` with no new output for this long ends (0: never);
# every long answer also ends as soon as its client has gone (imagestore/streams.py).
STREAM_IDLE_TIMEOUT = env_int("STREAM_IDLE_TIMEOUT", 300, minimum=0)
# A silent JSON stream (progress, Docker ``wait``) sends a space this often, for proxies.
STREAM_KEEPALIVE = env_int("STREAM_KEEPALIVE", 15, minimum=0)
# A successful HTTP Basic check is remembered this long (per web process; 0: never).
BASIC_AUTH_CACHE_SECONDS = env_int("BASIC_AUTH_CACHE_SECONDS", 60, minimum=0, maximum=3600)

# --- Celery -----------------------------------------------------------------------
# The broker is decided here, from configuration alone, never by probing it: every process
# of an installation (web, workers, beat) must agree on it, or jobs are queued where no
# worker listens. CELERY_BROKER_URL wins; otherwise REDIS_URL (default: Redis on loopback).
# The embedded filesystem broker (one machine only) is used when asked for:
# CELERY_BROKER_URL=filesystem:// or REDIS_URL set empty. A configured broker that cannot
# be reached stops the worker and `make run` at start (dashboard.celery.broker_problem).
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or REDIS_URL or "filesystem://"
CELERY_EMBEDDED_BROKER_DIR = VAR_DIR / "broker"
# Longer than the longest job: the Redis transport hands an unacknowledged message
# (acks_late: acknowledged when the job ends) to another worker after this long.
JOB_VISIBILITY_TIMEOUT = env_int("JOB_VISIBILITY_TIMEOUT", 12 * 3600, minimum=60)
# A queued job that no worker took in this long is sent again once, then failed with a reason.
JOB_QUEUED_TIMEOUT = env_int("JOB_QUEUED_TIMEOUT", 900, minimum=10)
if CELERY_BROKER_URL == "filesystem://":
    CELERY_EMBEDDED_BROKER_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(CELERY_EMBEDDED_BROKER_DIR),
        "data_folder_out": str(CELERY_EMBEDDED_BROKER_DIR),
        "store_processed": False,
    }
    BROKER_DESCRIPTION = f"embedded filesystem broker in {CELERY_EMBEDDED_BROKER_DIR}"
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": JOB_VISIBILITY_TIMEOUT,
        # A request that queues a job must not hang on a broker that does not answer, nor on
        # one that accepted the connection and went silent (longer than BRPOP's 1 s wait).
        "socket_connect_timeout": 3,
        "socket_timeout": 3,
    }
    BROKER_DESCRIPTION = maybe_sanitize_url(CELERY_BROKER_URL)


def _installation_queue() -> str:
    """A queue of this installation's own, named from what makes it one: its database and
    its data folder. Installations sharing a Redis never take each other's jobs."""
    db = DATABASES["default"]
    identity = "|".join(str(db.get(key) or "") for key in ("ENGINE", "HOST", "PORT", "NAME"))
    return "imagestore-" + hashlib.sha256(f"{identity}|{IMAGESTORE_ROOT}".encode()).hexdigest()[:16]


CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "") or _installation_queue()
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Long jobs (README, Operations): a message is acknowledged when its job ends, not when it
# starts, so a worker lost between taking a message and claiming its job gives the message
# back; a pool process that dies mid-task rejects (requeues) it instead of acknowledging.
# The job's conditional claim makes any second delivery a no-op.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message per pool process at a time: no job waits behind a long one on a busy worker
# while another worker is idle.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A broker blip must not stop running jobs (their claim keeps a redelivery from running twice).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
# Queueing a job from a request: a few quick tries, then the request answers 503.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-jobs": {"task": "imagestore.tasks.sweep_stale_jobs", "schedule": 60.0},
    "collect-garbage": {"task": "imagestore.tasks.collect_garbage", "schedule": 3600.0},
    "retention-policies": {"task": "imagestore.tasks.run_due_retention_policies", "schedule": 60.0},
}
# Is a newer image available for each tag pulled from a registry (services.updates): checked this
# often by beat (0: never), with at least UPDATE_CHECK_SPACING seconds between two requests to one registry.
UPDATE_CHECK_INTERVAL = env_int("UPDATE_CHECK_INTERVAL", 6 * 3600, minimum=0)
UPDATE_CHECK_SPACING = env_int("UPDATE_CHECK_SPACING", 1, minimum=0)
if UPDATE_CHECK_INTERVAL:
    CELERY_BEAT_SCHEDULE["check-updates"] = {"task": "imagestore.tasks.check_updates",
                                             "schedule": float(UPDATE_CHECK_INTERVAL)}

# --- REST API ---------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first, so an anonymous request is told 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "imagestore.api.auth_tokens.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "imagestore.api.auth_basic.CachedBasicAuthentication",  # remembers a good check briefly
    ],
    "DEFAULT_PERMISSION_CLASSES": ["imagestore.api.permissions.IsOperatorOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "imagestore.api.pagination.Pagination",
    # JSON bodies with a size and nesting cap (a 400, not a RecursionError's 500), then DRF's defaults.
    "DEFAULT_PARSER_CLASSES": [
        "imagestore.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
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

# --- security (README "Security") ---------------------------------------------------
# Every password check (sign-in page, admin, HTTP Basic) goes through the limiter: after
# LOGIN_FAILURE_LIMIT failures for one username from one client address within
# LOGIN_FAILURE_WINDOW seconds, that pair is refused until the window ends.
AUTHENTICATION_BACKENDS = ["imagestore.login_limit.LimitedModelBackend"]
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW", 300, minimum=1)
# API tokens (manage.py create_token): days until a new token expires unless told otherwise
# (0: never).
API_TOKEN_DEFAULT_EXPIRY_DAYS = env_int("API_TOKEN_DEFAULT_EXPIRY_DAYS", 0, minimum=0)
# The limiter's counters: in Redis when the broker is Redis, so every gunicorn worker sees
# the same counts; otherwise in each process's memory.
# Keyed by the installation (its queue name), so installations sharing a Redis keep their own.
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": CELERY_BROKER_URL, "KEY_PREFIX": CELERY_TASK_DEFAULT_QUEUE}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Behind a TLS-terminating proxy: SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https makes
# request.is_secure() trust the proxy's header (only set it when the proxy always sets it).
_proxy_ssl_header = env_list("SECURE_PROXY_SSL_HEADER", [])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be HEADER,value (e.g. HTTP_X_FORWARDED_PROTO,https)")
    SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header[0], _proxy_ssl_header[1])
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "django.server": {"()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}",
                          "style": "{"},
    },
    # Credentials in URLs (userinfo, secret query parameters) never reach a log line, including
    # the request lines `manage.py runserver` logs.
    "filters": {"redact": {"()": "dashboard.logfilters.RedactSecrets"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server", "filters": ["redact"]},
    },
    "loggers": {"django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- Prometheus metrics (/metrics, imagestore/metrics.py) ----------------------------------
# Every process (gunicorn's, Celery's) writes its samples under one folder of this installation,
# which /metrics adds up (prometheus_client's multiprocess mode). `make run` empties it at start
# (manage.py reset_metrics): samples of processes of an earlier run are not this run's.
METRICS_DIR = private_dir(VAR_DIR / "metrics" / CELERY_TASK_DEFAULT_QUEUE)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
# Webhooks (services/webhooks.py): attempts per delivery, the first retry's wait (doubling
# after each), and how long one attempt may take.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 5, minimum=1)
WEBHOOK_RETRY_BASE = env_int("WEBHOOK_RETRY_BASE", 10, minimum=0)
WEBHOOK_TIMEOUT = env_int("WEBHOOK_TIMEOUT", 10, minimum=1)
# A bearer token Prometheus sends (`authorization: {credentials: ...}`); unset: loopback only.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
