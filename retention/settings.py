"""Settings for the retention assistant, read from the environment.

With nothing set the embedded default runs: SQLite and a filesystem Celery broker under
``var/``, so a worker and beat run on a bare machine. ``DATABASE_URL`` and
``CELERY_BROKER_URL`` switch to PostgreSQL and Redis.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dj_database_url
import environ
from django.core.exceptions import ImproperlyConfigured

from retention.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# Local settings: `make demo` writes `.env` (git-ignored) with a generated SECRET_KEY and
# DEBUG=1, so every manage.py command, worker and make target of a local install runs as
# the demo did. Variables already in the environment win over the file;
# RETENTION_ENV_FILE names another file, or none when empty (the tests run without one).
ENV_FILE = env_str("RETENTION_ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    environ.Env.read_env(ENV_FILE)
elif ENV_FILE and "RETENTION_ENV_FILE" in os.environ:
    raise ImproperlyConfigured(f"RETENTION_ENV_FILE names {ENV_FILE}, which does not exist")

VAR_DIR = Path(env_str("RETENTION_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
CONSOLE_BASE_URL = env_str("CONSOLE_BASE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "knox",
    "axes",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "core",
    "retention",
    "customers",
    "ml",
    "bots",
    "console",
    "django_htmx",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "retention.urls"
WSGI_APPLICATION = "retention.wsgi.application"

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

# Session settings of every PostgreSQL connection we open: Django's, and the one
# core.sql streams COPY over. Parallel query turned the churn labels' DISTINCT over
# 20M orders from 1.4 s into more than 60 s whenever Python processes (workers, training)
# kept the 2 cores busy; serial it stayed at 3.6 s. Index builds after bulk loads are
# faster serial on such a host too (1.17M alerts: 0.72 s against 1.0 s with the default
# two workers). Off by default; raise DATABASE_PARALLEL_WORKERS on a database host with
# cores to spare.
_PARALLEL_WORKERS = str(env_int("DATABASE_PARALLEL_WORKERS", 0))
POSTGRES_SESSION_SETTINGS = {
    "max_parallel_workers_per_gather": _PARALLEL_WORKERS,
    "max_parallel_maintenance_workers": _PARALLEL_WORKERS,
}
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'retention.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a worker writes; the timeout waits out short locks
    # instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        # Transactions take the write lock when they begin. A deferred one that read first
        # and then writes cannot wait for a writer (that could deadlock), so SQLite fails it
        # at once with "database is locked": two agents approving one offer gave the
        # slower a 500 instead of "already decided".
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = " ".join(
        f"-c {name}={value}" for name, value in POSTGRES_SESSION_SETTINGS.items()
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Files the workers write for each other (scoring runs' feature frames). A shared volume or
# an object-storage backend in STORAGES when workers run on several hosts.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Staff sign in to the console (agents land on Today); the admin keeps its own login page.
LOGIN_URL = "/console/login/"
LOGIN_REDIRECT_URL = "/console/"

# --- Security: strict unless DEBUG; each can be relaxed explicitly behind a TLS proxy. ---
# The proxy header and HSTS preload/subdomains are opt-in: see the access block at the end.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Email: files under var/ in the demo, SMTP when EMAIL_HOST is set. ---
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "shop@example.com")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "retention.channels.files.MaskedFileEmailBackend",
)
EMAIL_FILE_PATH = VAR_DIR / "sent-email"

# --- Celery: filesystem broker under var/ by default, so no server is needed. ---
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast (control) messages too, or kombu writes them to ./control.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Cache: shared state of all processes (the bot's rate limits). Redis when the broker is
# Redis, so every web worker and Celery worker counts against the same limits; process
# memory on the embedded default, which runs in one process. ---
CACHE_URL = env_str(
    "CACHE_URL",
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "locmem://",
)
if CACHE_URL.startswith(("redis://", "rediss://")):
    _cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
elif CACHE_URL.startswith("locmem://"):
    _cache = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
else:
    raise ImproperlyConfigured(
        f"CACHE_URL must be redis://, rediss:// or locmem://, got {CACHE_URL!r}"
    )
CACHES = {"default": {**_cache, "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "retention")}}

# --- Telegram: the product runs without the bot when no token is set. ---
TELEGRAM_BOT_TOKEN = env_str("TELEGRAM_BOT_TOKEN")
TELEGRAM_WEBHOOK_SECRET = env_str("TELEGRAM_WEBHOOK_SECRET")
TELEGRAM_API_BASE_URL = env_str("TELEGRAM_API_BASE_URL") or None

# --- API ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Retention assistant API",
    "DESCRIPTION": "Shop data in, churn risk and retention actions out.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}
# The bulk endpoints accept up to 10,000 records per request.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 50 * 1024 * 1024)
API_MAX_BATCH = 10_000

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs every request at INFO: each message sent and each Telegram poll. The outbox
    # and the bot record their own outcomes, so only its warnings are kept.
    "loggers": {"httpx": {"level": "WARNING"}},
}

# Scoring runs whose per-customer rows are kept (older ones are pruned after each run).
ML_KEEP_SCORING_RUNS = env_int("ML_KEEP_SCORING_RUNS", 14)

# work_mem for the nightly whole-table aggregates (features), set per transaction.
ANALYTICS_WORK_MEM = env_str("ANALYTICS_WORK_MEM", "256MB")

# --- Retention workflow: channels, outbox and the shop's name in messages. ---
SHOP_NAME = env_str("SHOP_NAME", "Our shop")
# The currency the shop's money is shown in (ISO 4217), in the console and the admin.
SHOP_CURRENCY = env_str("SHOP_CURRENCY", "EUR")
RETENTION_MAIL_DOMAIN = env_str("RETENTION_MAIL_DOMAIN", "retention.local")
# One backend per channel (dotted paths); SMS goes to a file in the demo until a provider
# URL is set, webhooks only once a URL and a signing secret are set.
SMS_PROVIDER_URL = env_str("SMS_PROVIDER_URL")
SMS_PROVIDER_KEY = env_str("SMS_PROVIDER_KEY")
WEBHOOK_URL = env_str("WEBHOOK_URL")
WEBHOOK_SECRET = env_str("WEBHOOK_SECRET")
RETENTION_CHANNELS = {
    "email": "retention.channels.email.EmailChannel",
    "sms": "retention.channels.sms.HttpSmsChannel"
    if SMS_PROVIDER_URL
    else "retention.channels.files.FileSmsChannel",
    "webhook": "retention.channels.webhook.WebhookChannel",
}
RETENTION_HTTP_TIMEOUT = env_int("RETENTION_HTTP_TIMEOUT", 10)
# Failed sends are retried after 30 s, 60 s, 120 s ... and failed for good after this many.
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 6)
OUTBOX_RETRY_SECONDS = env_int("OUTBOX_RETRY_SECONDS", 30)
OUTBOX_BATCH = env_int("OUTBOX_BATCH", 500)
# Sends in flight at once per worker, on channels whose backend allows it (HTTP ones).
OUTBOX_CONCURRENCY = env_int("OUTBOX_CONCURRENCY", 8)
# Leases of sending workers (hardening, issue 14). A worker's claim on its messages, and
# the flush's and the card pusher's job leases, last this long and are renewed every third
# of it while the holder works, so a killed worker's messages are picked up within it.
OUTBOX_LEASE_SECONDS = env_int("OUTBOX_LEASE_SECONDS", 60)
TELEGRAM_PUSH_LEASE_SECONDS = env_int("TELEGRAM_PUSH_LEASE_SECONDS", 60)
if min(OUTBOX_LEASE_SECONDS, TELEGRAM_PUSH_LEASE_SECONDS) < 1:
    raise ImproperlyConfigured("OUTBOX_LEASE_SECONDS and TELEGRAM_PUSH_LEASE_SECONDS must be >= 1")
# Messages marked in flight together on channels whose provider drops repeated keys (one at
# a time on the others, so a crash leaves at most the one being sent uncertain).
OUTBOX_GROUP = env_int("OUTBOX_GROUP", 128)
# Reconnects when the database drops while outcomes are recorded, before giving up.
OUTBOX_DB_RETRIES = env_int("OUTBOX_DB_RETRIES", 5)
# Delivery receipts from providers are signed with this (HMAC-SHA256, like our webhooks).
RECEIPTS_SECRET = env_str("RECEIPTS_SECRET")

# Telegram's limits for a bot: about 30 messages a second overall, one a second per chat.
TELEGRAM_MESSAGES_PER_SECOND = env_int("TELEGRAM_MESSAGES_PER_SECOND", 30)
TELEGRAM_SECONDS_PER_CHAT = float(env_str("TELEGRAM_SECONDS_PER_CHAT", "1.0"))
# Commands and text a chat may send per minute, and buttons it may tap, before the bot asks
# it to slow down (counted in the cache, across processes).
BOT_COMMANDS_PER_MINUTE = env_int("BOT_COMMANDS_PER_MINUTE", 20)


# --- Access: API tokens, login lockout, API rates, the shared cache, TLS proxy and HSTS. ---
# Kept in one block: roles and throttles read these, and each has an environment override.

# API tokens (django-rest-knox): only a SHA-512 digest is stored, and each token expires.
API_TOKEN_TTL_DAYS = env_int("API_TOKEN_TTL_DAYS", 90)
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(days=API_TOKEN_TTL_DAYS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

# Behind a proxy that terminates TLS, its X-Forwarded-Proto says whether the client used
# HTTPS and its X-Forwarded-For names the client; trusted only when the operator says so,
# since without such a proxy any client could set both.
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 1 if BEHIND_TLS_PROXY else 0)

# Preload and subdomains commit every host under the domain to HTTPS for months and are
# hard to undo, so they are the operator's decision; check --deploy's reminders about them
# are silenced while they are off.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = [
    *([] if SECURE_HSTS_INCLUDE_SUBDOMAINS else ["security.W005"]),
    *([] if SECURE_HSTS_PRELOAD else ["security.W021"]),
]

# Admin logins (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username
# from one address, that pair is locked out for LOGIN_COOLOFF_MINUTES. Keying on the pair
# means an attacker elsewhere cannot lock a colleague out.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "retention.throttling.client_ip"
# Its start-up banner would open the output of every command, worker and bench.
AXES_VERBOSE = False

# API rates per client address (anonymous) and per user; delivery receipts come from a few
# provider addresses in bursts, so they have their own, higher rate.
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "rest_framework.throttling.AnonRateThrottle",
    "rest_framework.throttling.UserRateThrottle",
]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "anon": env_str("API_RATE_ANON", "60/minute"),
    "user": env_str("API_RATE_USER", "600/minute"),
    "receipts": env_str("API_RATE_RECEIPTS", "6000/minute"),
}
REST_FRAMEWORK["NUM_PROXIES"] = TRUSTED_PROXY_COUNT

BOT_BUTTONS_PER_MINUTE = env_int("BOT_BUTTONS_PER_MINUTE", 60)

# --- API input and contract (issue 14) -------------------------------------------------
# The API takes JSON only (its clients are shop systems and providers, not forms), and
# JSON nested beyond Python's recursion limit is a 400, not a 500.
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["retention.parsers.JSONParser"]
# The API docs load Swagger UI from our own static files, never from a CDN, and only staff
# (Admins and Agents) may read the schema and the docs: the docs run in the app's origin
# with the user's session.
INSTALLED_APPS.append("drf_spectacular_sidecar")
SPECTACULAR_SETTINGS |= {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["core.permissions.IsStaffRole"],
}
SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] = [
    "drf_spectacular.hooks.postprocess_schema_enums",
    "core.schema.document_errors",
]
