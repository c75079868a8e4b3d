"""gradeproject settings: one module, read from the environment.

With nothing set, the app runs on an embedded SQLite file under var/, the
django-q2 ORM broker on that same database, and the offline `builtin` grader,
so a fresh clone works without services, keys or network.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from core.env import (
    env_bool,
    env_duration,
    env_float,
    env_int,
    env_json,
    env_list,
    env_rate,
    env_str,
    env_window_rate,
    parse_database_url,
    sqlite_database,
)
from grading.providers.connections import MAX_CONCURRENCY, BadConnection
from grading.providers.connections import load_setting as load_connections
from grading.providers.remote import configured_prices

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off: export SECRET_KEY=… (a long random string), "
            "or DEBUG=1 on a development machine."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "guardian",
    "django_q",
    "core",
    "grading",
    "templates_app",
    "batches",
    "notifications",
    "accounts",
    "health",
    # Lets FORM_RENDERER find Django's widget templates beside the project's own.
    "django.forms",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before the CSRF check, which parses the body: an upload over the limit is refused unread.
    "core.request_guards.RefuseOversizedBodyMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Pages show and read times in the user's zone (chosen on /account, else the browser's).
    "accounts.middleware.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # The app's own 403 and 404 pages, with DEBUG on too.
    "core.error_pages.ErrorPagesMiddleware",
]

ROOT_URLCONF = "gradeproject.urls"
# Widgets render through the project's templates, so templates/django/forms/widgets/
# can give text inputs and textareas dir="auto" for right-to-left and mixed text.
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"
WSGI_APPLICATION = "gradeproject.wsgi.application"
APPEND_SLASH = False

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
                "notifications.web.unread_notifications",
            ],
        },
    },
]

# Kept connections matter: django-q2 workers on PostgreSQL ran many times fewer
# tasks a second with a new connection per task (README, Benchmarks, has the figures).
CONN_MAX_AGE = env_int("CONN_MAX_AGE", 600, minimum=0)
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": parse_database_url(DATABASE_URL, CONN_MAX_AGE)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {"default": sqlite_database(str(VAR_DIR / "gradeproject.sqlite3"), CONN_MAX_AGE)}
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian "AnonymousUser" row: anonymous requests are refused, never given data.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False
GUARDIAN_RENDER_403 = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env_list(
    "PASSWORD_HASHERS",
    [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/batches"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"

MAX_DOCUMENT_MB = env_int("MAX_DOCUMENT_MB", 20, minimum=1)
MAX_FILES_PER_UPLOAD = env_int("MAX_FILES_PER_UPLOAD", 500, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = MAX_FILES_PER_UPLOAD

# Largest upload in all (documents, uncompressed) and largest compression
# ratio of a ZIP entry: past it, the entry is refused as a zip bomb.
MAX_UPLOAD_MB = env_int("MAX_UPLOAD_MB", 200, minimum=1)
MAX_ZIP_RATIO = env_int("MAX_ZIP_RATIO", 100, minimum=2)

# --- Bounded extraction (grading/extraction.py) ---
# Characters of text one document may yield (about 200 pages of prose); past it
# the upload is refused. A .docx's XML may inflate to 100 bytes per character
# allowed (at least 16 MB), and the same ratio limit as ZIP entries applies.
MAX_DOCUMENT_CHARS = env_int("MAX_DOCUMENT_CHARS", 500_000, minimum=1000)

REST_FRAMEWORK = {
    # Token first: the first class names the WWW-Authenticate challenge, which
    # is what makes an anonymous request a 401 rather than a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        # DRF's, whose CSRF check leaves a body over the upload limit unread for the view to refuse.
        "core.upload_limit.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": [
        "core.api_support.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api_support.Pagination",
    "PAGE_SIZE": 25,
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "gradeproject API",
    "DESCRIPTION": "Grade documents with AI providers in batches of grading jobs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["core.api_support.paths_without_trailing_slash"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api_support.every_operation_answers_a_bad_query",
    ],
    "ENUM_NAME_OVERRIDES": {"NotificationEventEnum": "notifications.models.Event"},
}

# Providers. Credentials come from the environment only, never the database. They are read
# here, once; the providers (grading/providers/) read them from django.conf.settings.
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL") or "https://api.openai.com/v1"
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
# 0: not known; learnt from the provider's 429s (grading.learnt_limits).
OPENAI_MAX_CONCURRENCY = env_int("OPENAI_MAX_CONCURRENCY", 16, minimum=0, maximum=MAX_CONCURRENCY)
OPENAI_RPM = env_int("OPENAI_RPM", 0, minimum=0)  # 0: no request-rate limit
OPENAI_TPM = env_int("OPENAI_TPM", 0, minimum=0)  # 0: no token-rate limit (the headers may state one)
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
ANTHROPIC_MAX_CONCURRENCY = env_int("ANTHROPIC_MAX_CONCURRENCY", 8, minimum=0, maximum=MAX_CONCURRENCY)
ANTHROPIC_RPM = env_int("ANTHROPIC_RPM", 0, minimum=0)  # 0: no request-rate limit
ANTHROPIC_TPM = env_int("ANTHROPIC_TPM", 0, minimum=0)  # 0: no token-rate limit (the headers may state one)
# Whether the endpoint offers the provider's batch API (economy delivery at half price): the
# providers' own endpoints do; local servers (Ollama, vLLM, llama.cpp) mostly do not. A PROVIDERS
# connection says so with its own `batch_api`.
OPENAI_BATCH_API = env_bool("OPENAI_BATCH_API", OPENAI_BASE_URL.startswith("https://api.openai.com"))
ANTHROPIC_BATCH_API = env_bool(
    "ANTHROPIC_BATCH_API", ANTHROPIC_BASE_URL.startswith("https://api.anthropic.com")
)
# Named provider connections beside (or over) `openai` and `anthropic`: JSON such as
# {"local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1"}}, or a file of it named by
# PROVIDERS_FILE (grading/providers/connections.py). Each names its key's environment variable
# (key_env); the key itself is read from there when a call is made, never kept in a setting.
try:
    PROVIDERS = load_connections(env_str("PROVIDERS"), env_str("PROVIDERS_FILE"))
except BadConnection as error:
    raise ImproperlyConfigured(str(error)) from None
# {"model": [input $/1M tokens, output $/1M tokens]} over the providers' own tables; Claude
# models may add [cache write $/1M, cache read $/1M] after them.
MODEL_PRICES = env_json("MODEL_PRICES", {})
try:
    configured_prices(MODEL_PRICES)
except ValueError as error:
    # Read by the providers only when they price a call: checked here so that a bad row stops
    # start-up, not an estimate or a recorded result later.
    raise ImproperlyConfigured(str(error)) from None
# {"name": "dotted.path.ProviderClass"}: providers beside the built-in ones (plug-ins; the
# fault benchmark registers one that crashes its worker on a marked document).
EXTRA_PROVIDERS = env_json("EXTRA_PROVIDERS", {})
# Provider health (grading/circuits.py): an open circuit is probed after a growing wait
# capped at this; a batch whose provider stays down this long is paused, with a notification.
PROVIDER_PROBE_MAX_S = env_float("PROVIDER_PROBE_MAX_S", 5.0, minimum=0.1)
PROVIDER_OUTAGE_PAUSE_AFTER = env_duration("PROVIDER_OUTAGE_PAUSE_AFTER", "1h")
# Learnt limits (grading/learnt_limits.py): a cut calls-at-once figure no refusal has
# confirmed for this long relaxes halfway back to the configured cap, and again each period.
LEARNT_LIMIT_RELAX_AFTER = env_duration("LEARNT_LIMIT_RELAX_AFTER", "10m")

# The processing engine (grading/runner.py). A claimed job's lease is renewed while
# its worker lives; when the worker dies the lease runs out and the job is re-queued.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 120, minimum=2)
# Provider calls one worker process keeps in flight (threads; calls wait on the network).
RUNNER_THREADS = env_int("RUNNER_THREADS", 32, minimum=1)

# django-q2. save_limit -1 keeps no successful-task rows: the default of 250
# cut throughput (README, Benchmarks, has the figure) and caused "database is
# locked" on SQLite. retry must exceed timeout plus the time a task can wait in
# a worker's prefetch queue, or a task still running (or still queued in the
# worker) is delivered twice.
Q_TIMEOUT = env_int("Q_TIMEOUT", 900, minimum=10)
Q_RETRY = env_int("Q_RETRY", Q_TIMEOUT + 300, minimum=11)
if Q_RETRY <= Q_TIMEOUT:
    raise ImproperlyConfigured("Q_RETRY must be greater than Q_TIMEOUT, or tasks run twice.")
REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER = {
    "name": env_str("Q_CLUSTER_NAME", "gradeproject"),
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    "recycle": 500,
    "timeout": Q_TIMEOUT,
    "retry": Q_RETRY,
    "max_attempts": 1,
    "save_limit": -1,
    "queue_limit": 20,
    "ack_failures": True,
    "catch_up": False,
    "poll": env_float("Q_POLL", 0.2, minimum=0.01),
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# The daily archival moves finished batches out of the lists after this long.
ARCHIVE_AFTER = env_duration("ARCHIVE_AFTER", "30d")

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "gradeproject@localhost")

# Notifications (README: Notifications). SITE_URL makes the links in e-mails and webhooks absolute.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 5, minimum=1)
NOTIFY_RETRY_BASE_S = env_float("NOTIFY_RETRY_BASE_S", 30.0, minimum=0)
NOTIFY_RETRY_MAX_S = env_float("NOTIFY_RETRY_MAX_S", 3600.0, minimum=0)
NOTIFY_SEND_TIMEOUT_S = env_float("NOTIFY_SEND_TIMEOUT_S", 10.0, minimum=0.1)
NOTIFY_ERROR_RATE = env_float("NOTIFY_ERROR_RATE", 0.2, minimum=0)
NOTIFY_ERROR_MIN_JOBS = env_int("NOTIFY_ERROR_MIN_JOBS", 5, minimum=1)
NOTIFY_DEADLINE_NEAR = env_duration("NOTIFY_DEADLINE_NEAR", "60m")
# Progress milestones only for batches that have run this long: a batch done in
# seconds is announced once, when it finishes.
NOTIFY_MILESTONE_AFTER = env_duration("NOTIFY_MILESTONE_AFTER", "2m")
# Webhooks to loopback, private and link-local addresses let any user make the
# server call its own network; allowed only where that is the point (development).
NOTIFY_WEBHOOK_ALLOW_PRIVATE = env_bool("NOTIFY_WEBHOOK_ALLOW_PRIVATE", DEBUG)
# /healthz counts a cluster as seen when its heartbeat task ran this recently.
HEALTH_HEARTBEAT_MAX_AGE_S = env_int("HEALTH_HEARTBEAT_MAX_AGE_S", 180, minimum=10)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"quiet_refusals": {"()": "core.quiet_logs.QuietRefusals"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # A 403 or 404 is an expected refusal: the server's access line is enough (core/quiet_logs.py).
        "django.request": {"filters": ["quiet_refusals"]},
        # The OpenAI SDK's HTTP client logs every request at INFO: hundreds a second.
        "httpx2": {"level": "WARNING"},
    },
}

# --- Hostile input and sign-in guesses (README: Configuration) ---
# A NUL in a URL's query string is a 400, in its path a 404, before any view
# sees it (PostgreSQL refuses NUL in any text it is given). After the session,
# user and messages are in place: the error pages render the signed-in layout.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.messages.middleware.MessageMiddleware") + 1,
    "core.request_guards.RejectInvalidQueryMiddleware",
)
# Reverse proxies in front of the app that append the client's address to
# X-Forwarded-For; 0 trusts the header not at all and uses the connecting address.
NUM_PROXIES = env_int("NUM_PROXIES", 0, minimum=0)
REST_FRAMEWORK["NUM_PROXIES"] = NUM_PROXIES
# POST /api/auth/token, per client address and per username (core/api_auth.py).
AUTH_TOKEN_RATE = env_rate("AUTH_TOKEN_RATE", "10/min")
# Failed sign-ins from one client address, whatever the usernames, on the sign-in
# page, the admin's and the token endpoint (core/sign_in_limit.py): password
# spraying stays under the lockout per username below. Generous, because a
# school's pupils may all sign in from behind one NAT address.
SIGN_IN_ADDRESS_RATE = env_window_rate("SIGN_IN_ADDRESS_RATE", "30/10m")
MIDDLEWARE.append("core.sign_in_limit.SignInAddressLimitMiddleware")
# Where those requests and failures are counted. In process memory, each gunicorn
# worker of each web machine would allow the limits on its own; with Redis, every
# web process counts against the one limit. Nothing else uses a cache.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttles": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{Q_CLUSTER['name']}:throttles",
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttles"}
    ),
}
# django-axes counts failed sign-ins (sign-in page, admin and token endpoint alike)
# in the database. LOGIN_FAILURE_LIMIT wrong passwords for one username from one
# address are answered as such; the next attempt that fails locks the pair out
# for LOGIN_COOLOFF (axes locks at its limit, so its limit is one more), and
# while locked even the right password is refused.
INSTALLED_APPS.append("axes")
AUTHENTICATION_BACKENDS.insert(0, "axes.backends.AxesStandaloneBackend")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
AXES_ENABLED = env_bool("LOGIN_LOCKOUT", True)
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT + 1
AXES_COOLOFF_TIME = env_duration("LOGIN_COOLOFF", "15m")
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Tries during a lockout do not extend it: the lock ends LOGIN_COOLOFF after the last counted failure.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "core.client_address.client_ip"
AXES_LOCKOUT_CALLABLE = "core.api_auth.lockout_page"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False  # no start-up banner; lockouts are still logged
# Session and CSRF cookies only over HTTPS unless DEBUG; a plain-HTTP intranet sets these to 0.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
