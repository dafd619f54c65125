"""Afterdesk settings: one module, configured by environment variables only (see README, "Configuration")."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF
from django.utils.translation import gettext_lazy as _

from portal.env import env_bool, env_database, env_file_storage, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("AFTERDESK_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# Under pytest the suite runs over plain HTTP with fast hashing; nothing else changes.
TESTING = env_bool("AFTERDESK_TESTING", "pytest" in sys.modules)
# A fixed development key keeps `make run` zero-config; production must set SECRET_KEY (check --deploy says so).
SECRET_KEY = env_str("SECRET_KEY", "django-insecure-afterdesk-local-development-only")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Where providers reach this portal: the webhook URLs given to them are built on it.
PUBLIC_URL = env_url("PUBLIC_URL", "http://127.0.0.1:8000")
# Days raw pushes are kept once processed, and unknown tracking numbers once matched (tracking.retention);
# never-matched numbers are kept TRACKING_UNMATCHED_RETENTION_DAYS after their last push. 0: for ever.
TRACKING_DELIVERY_RETENTION_DAYS = env_int("TRACKING_DELIVERY_RETENTION_DAYS", 30, minimum=0)
TRACKING_UNMATCHED_RETENTION_DAYS = env_int("TRACKING_UNMATCHED_RETENTION_DAYS", 90, minimum=0)
# The largest provider push the webhook takes (a full trace of a few hundred checkpoints is well under 1 MB);
# a larger one is answered 413 and counted as a rejected payload, not silently refused.
TRACKING_WEBHOOK_MAX_BYTES = env_int("TRACKING_WEBHOOK_MAX_BYTES", 10 * 1024 * 1024, minimum=64 * 1024)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "django_htmx",
    "template_partials",
    "pgtrigger",  # the audit tables' triggers (cases.models, tracking.models); PostgreSQL only
    "csp",
    "axes",
    "portal",
    "tracking",
    "cases",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Provider webhooks (no cookies, no user) skip everything below: see portal.middleware.
    "portal.middleware.MachineEndpointMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.IdleSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
MACHINE_ENDPOINT_PREFIXES = ("/webhooks/",)
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'afterdesk.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the django-q2 worker share the file: WAL lets readers run beside the writer,
    # and IMMEDIATE transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT: these are OLTP queries, and one whose cost estimate crosses the JIT thresholds (the set-based
    # summary refresh over thousands of shipments does) pays ~1.5 s of compilation for ~100 ms of work.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
    # Django turns psycopg's prepared statements off (None). Its client-side-binding cursors never prepare
    # anyway; this lets the few statements sent through portal.db.prepared_cursor be prepared. Behind a
    # transaction-pooling PgBouncer older than 1.21, set it back to None.
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# django-axes first: a locked-out account or address is refused before its password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/cases/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    # Evidence files: MEDIA_ROOT, or an S3-compatible bucket with FILES_S3_BUCKET (portal.env.env_file_storage).
    "default": env_file_storage("FILES"),
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Security: strict by default whenever DEBUG is off; plain-HTTP local serving opts out explicitly.
SECURE_SSL = env_bool("SECURE_SSL", not (DEBUG or TESTING))
SESSION_COOKIE_SECURE = SECURE_SSL
CSRF_COOKIE_SECURE = SECURE_SSL
SECURE_SSL_REDIRECT = SECURE_SSL
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if SECURE_SSL else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# An agent's session ends after this many idle seconds (default 8 hours: a shift). Activity restarts the
# count (portal.middleware.IdleSessionMiddleware: at most one session write a minute, not one per request as
# SESSION_SAVE_EVERY_REQUEST would), so only a desk left alone is logged out. A page polling while its tab is
# visible (queue counts, the war room on a wall screen) counts as in use.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 8 * 60 * 60, minimum=5 * 60)

# Content-Security-Policy (django-csp): scripts and styles come from our own static files only. No inline
# <script>, no on*= attribute, no style= attribute (they live in portal/static/portal/); htmx runs with
# allowEval, allowScriptTags and its injected indicator <style> off (the htmx-config <meta> in base.html).
# The evidence file view sends its own, stricter sandbox policy; the Swagger UI page adds what it needs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],  # evidence thumbnails are our own URLs: no data: or blob: needed
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}
# Browser features no page here uses, refused to every frame (portal.middleware.PermissionsPolicyMiddleware).
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer", "autoplay", "camera", "display-capture", "geolocation", "gyroscope",
        "magnetometer", "microphone", "midi", "payment", "publickey-credentials-get", "usb",
        "screen-wake-lock", "serial", "xr-spatial-tracking",
    )
}  # fmt: skip

# Login throttling (django-axes). Per account: AXES_FAILURE_LIMIT failures in AXES_COOLOFF_TIME lock that
# username, from any address (a password guessed from many machines). Per address: a higher limit, because a
# support floor logs in from one NAT address and a few agents' typos must not lock the whole floor out, while
# one address trying many usernames (password spraying) is still stopped. See portal.login_throttle.
AXES_HANDLER = "portal.login_throttle.LoginThrottleHandler"
AXES_LOCKOUT_PARAMETERS = [["username"], ["ip_address"]]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_LIMIT_PER_IP = env_int("LOGIN_FAILURE_LIMIT_PER_IP", 30, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_RESET_ON_SUCCESS = True
# A failure while locked does not push the end of the lock further away: the message's "15 minutes" holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # every failed login kept (AccessFailureLog), for the audit
AXES_LOCKOUT_CALLABLE = "portal.login_throttle.lockout_response"
AXES_CLIENT_IP_CALLABLE = "portal.login_throttle.client_ip"  # the proxy's X-Forwarded-For behind one

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Afterdesk <noreply@afterdesk.local>")

# The REST API (/api/v1/, portal.api): one authentication, one permission, one error format, set here once.
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "1200/min")  # per API key; empty: no limit
# The largest request body the API reads (a bulk of 1,000 orders is about 1 MB): 413 beyond, named.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 8 * 1024 * 1024, minimum=64 * 1024)
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["portal.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["portal.api.auth.KeyScopePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["portal.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "portal.api.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Afterdesk API",
    "DESCRIPTION": (
        "Push what your storefront sells (SKUs, stock, live sessions, orders) and receive what Afterdesk "
        "decides (cases, buyer messages to post, held orders). Authenticate with a store API key: "
        "`Authorization: Bearer <key>`; a key sees one store. Writes are idempotent: PUT by the natural key "
        "in the path, POST with an `Idempotency-Key` header. Errors are RFC 9457 problem documents "
        "(`application/problem+json`) whose `errors` name each field refused. Times are ISO 8601 with an "
        "offset; money is a decimal string with the store's currency. Lists are cursor-paginated: pass "
        "`next_cursor` as `after`."
    ),
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": ["portal.api.schema.components_hook"],
    "COMPONENT_SPLIT_REQUEST": False,
    # Swagger UI from the vendored copy (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# django-q2: the database row is the unit of durable work, the broker only a wake-up (DESIGN.md).
# timeout < retry so a slow task is killed before the broker hands it to a second worker.
Q_CLUSTER = {
    "name": "afterdesk",
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    "timeout": 120,
    "retry": 180,
    "max_attempts": 5,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

DEMO_PASSWORD = env_str("DEMO_PASSWORD", "afterdesk-demo")

# Outbound webhooks (cases.outbox): may the worker POST to http:// URLs and to addresses inside the network
# (loopback, private, link-local)? Off in production, so a store admin's URL cannot probe our own network.
WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", DEBUG or TESTING)
# Evidence files (cases.evidence): the largest file taken, and what one case may hold in all.
EVIDENCE_MAX_BYTES = env_int("EVIDENCE_MAX_BYTES", 25 * 1024 * 1024, minimum=1024 * 1024)
EVIDENCE_CASE_MAX_BYTES = env_int("EVIDENCE_CASE_MAX_BYTES", 200 * 1024 * 1024, minimum=1024 * 1024)
# Days a withdrawn evidence file's bytes are kept after the withdrawal (0: for ever); live files are never deleted.
EVIDENCE_WITHDRAWN_RETENTION_DAYS = env_int("EVIDENCE_WITHDRAWN_RETENTION_DAYS", 365, minimum=0)
# Days storefront events are kept (pending ones too): the pull API's window.
STOREFRONT_EVENT_RETENTION_DAYS = env_int("STOREFRONT_EVENT_RETENTION_DAYS", 30, minimum=1)
