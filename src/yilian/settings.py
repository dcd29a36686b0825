"""Django settings for Yilian. Every value comes from the environment (see ``common/env.py``).

The embedded default is SQLite under ``var/``; ``DATABASE_URL=postgres://...`` switches to PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from yilian.common.env import env_bool, env_int, env_list, env_str, local_secrets

BASE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BASE_DIR.parent.parent
VAR_DIR = Path(env_str("YILIAN_VAR_DIR", str(PROJECT_DIR / "var")))

_local = local_secrets(VAR_DIR) if not env_str("SECRET_KEY") else {}
SECRET_KEY = env_str("SECRET_KEY") or _local["SECRET_KEY"]
DEBUG = env_bool("YILIAN_DEBUG", False)
ALLOWED_HOSTS = env_list("YILIAN_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("YILIAN_CSRF_TRUSTED_ORIGINS", [])

# Field encryption (MultiFernet: first key encrypts, all keys decrypt, so keys can rotate)
# and the keyed hash used to look encrypted identifiers up.
FIELD_ENCRYPTION_KEYS = env_list("YILIAN_FIELD_KEYS", []) or [_local["YILIAN_FIELD_KEYS"]]
BLIND_INDEX_KEY = env_str("YILIAN_INDEX_KEY") or _local["YILIAN_INDEX_KEY"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "template_partials",
    "ninja",  # serves the interactive API docs' assets locally (no CDN on an intranet)
    "django_tasks",
    "django_tasks_db",
    "yilian.common",
    "yilian.community",
    "yilian.accounts",
    "yilian.patients",
    "yilian.notifications",
    "yilian.scheduling",
    "yilian.exams",
    "yilian.queueing",
    "yilian.chronic",
    "yilian.ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "yilian.common.audit.AuditContextMiddleware",
    "yilian.accounts.middleware.SessionTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "yilian.common.middleware.DomainErrorMiddleware",
]

ROOT_URLCONF = "yilian.urls"
WSGI_APPLICATION = "yilian.wsgi.application"
ASGI_APPLICATION = "yilian.asgi.application"

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
                "yilian.common.context_processors.product",
            ],
        },
    },
]

_default_db = f"sqlite:///{VAR_DIR / 'yilian.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(env_str("DATABASE_URL", _default_db), conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web server and the task worker share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:staff-login"

# Sessions: idle timeout (MLPS 2.0 practice), cookie hardening.
SESSION_ENGINE = "yilian.accounts.sessions"  # the db engine; an existing session is saved in one UPDATE
SESSION_IDLE_TIMEOUT = timedelta(minutes=env_int("YILIAN_SESSION_IDLE_MINUTES", 30, minimum=1))
SESSION_COOKIE_AGE = env_int("YILIAN_SESSION_MAX_SECONDS", 12 * 3600, minimum=60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("YILIAN_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Sign-in protection.
STAFF_LOCKOUT_THRESHOLD = env_int("YILIAN_LOCKOUT_THRESHOLD", 5, minimum=1)
STAFF_LOCKOUT_MINUTES = env_int("YILIAN_LOCKOUT_MINUTES", 15, minimum=1)
OTP_TTL_SECONDS = env_int("YILIAN_OTP_TTL_SECONDS", 300, minimum=30)
OTP_MAX_PER_PHONE_PER_HOUR = env_int("YILIAN_OTP_PER_PHONE_HOUR", 5, minimum=1)
OTP_MAX_PER_IP_PER_HOUR = env_int("YILIAN_OTP_PER_IP_HOUR", 20, minimum=1)
# access.md B-18: booking and availability calls per minute, per account and per client address
# (0 = no limit). Per process with the default local cache: see common.throttle.
BOOKING_PER_ACCOUNT_MINUTE = env_int("YILIAN_BOOKING_PER_ACCOUNT_MINUTE", 10, minimum=0)
BOOKING_PER_IP_MINUTE = env_int("YILIAN_BOOKING_PER_IP_MINUTE", 600, minimum=0)
AVAILABILITY_PER_ACCOUNT_MINUTE = env_int("YILIAN_AVAILABILITY_PER_ACCOUNT_MINUTE", 60, minimum=0)
AVAILABILITY_PER_IP_MINUTE = env_int("YILIAN_AVAILABILITY_PER_IP_MINUTE", 3000, minimum=0)
# An account limited this many times within an hour is flagged for review (never blocked).
AUTOMATION_FLAG_AFTER = env_int("YILIAN_AUTOMATION_FLAG_AFTER", 3, minimum=1)
OTP_MIN_INTERVAL_SECONDS = env_int("YILIAN_OTP_MIN_INTERVAL_SECONDS", 60, minimum=0)
OTP_MAX_ATTEMPTS = env_int("YILIAN_OTP_MAX_ATTEMPTS", 5, minimum=1)

# E-health card QR codes.
CARD_TOKEN_TTL_SECONDS = env_int("YILIAN_CARD_TOKEN_TTL_SECONDS", 60, minimum=10)
CARD_TOKEN_REFRESH_SECONDS = env_int("YILIAN_CARD_TOKEN_REFRESH_SECONDS", 30, minimum=5)

# Notifications.
SMS_SENDER = env_str("YILIAN_SMS_SENDER", "yilian.notifications.senders.ConsoleSmsSender")
QUIET_HOURS = (env_int("YILIAN_QUIET_START_HOUR", 22), env_int("YILIAN_QUIET_END_HOUR", 7))
SMS_MAX_ATTEMPTS = env_int("YILIAN_SMS_MAX_ATTEMPTS", 3, minimum=1)

TASKS = {
    "default": {
        "BACKEND": env_str("YILIAN_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
    }
}
if env_str("YILIAN_REDIS_URL"):
    # Scale-out: an RQ-backed queue is a setting away (pip install ".[redis]"; workers run
    # ``yilian rqworker default`` instead of ``yilian db_worker``).
    TASKS["default"] = {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}
    RQ_QUEUES = {"default": {"URL": env_str("YILIAN_REDIS_URL")}}
    INSTALLED_APPS.append("django_rq")

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "yilian": {"handlers": ["console"], "level": env_str("YILIAN_LOG_LEVEL", "INFO")},
    },
}

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
TRUST_X_FORWARDED_FOR = env_bool("YILIAN_TRUST_X_FORWARDED_FOR", False)
