"""Settings, all from environment variables with safe defaults (documented in README.md).

Unset DATABASE_URL and REDIS_URL give the embedded default: SQLite in WAL mode and an
in-process channel layer, one process. Setting both gives the scale-out mode.
"""

import asyncio
import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value in ("1", "true", "yes", "on")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _persistent_secret() -> str:
    """A random key kept in DATA_DIR so that restarts keep sessions and nonces valid."""
    path = DATA_DIR / "secret.key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _database(url: str) -> dict:
    if not url:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        return _sqlite(DATA_DIR / "db.sqlite3")
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        return _sqlite(unquote(parsed.path))
    if parsed.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ValueError(f"DATABASE_URL scheme {parsed.scheme!r} is not supported (postgres, sqlite)")


def _sqlite(path) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        # Persistent connection: the SIP hot path must not reopen the file per request.
        "CONN_MAX_AGE": None,
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }


# uvloop must be the loop policy before daphne installs its Twisted reactor, which
# happens when Django loads the daphne app: settings are the earliest shared hook.
if env_bool("SIP_UVLOOP", True):
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _persistent_secret()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "sipws",
    "xcapapi",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Daphne serves no static files; WhiteNoise serves admin and page assets in-process.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "presence_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
ASGI_APPLICATION = "presence_project.asgi.application"
WSGI_APPLICATION = None

DATABASE_URL = env_str("DATABASE_URL", "")
DATABASES = {"default": _database(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "capacity": 1000},
        }
    }
else:
    # Channels' InMemoryChannelLayer scans every channel on each receive (O(N) per
    # connection); ours keeps one queue per channel.
    CHANNEL_LAYERS = {"default": {"BACKEND": "sipws.transports.local_layer.LocalChannelLayer"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
WHITENOISE_USE_FINDERS = True  # serve straight from the apps: no collectstatic step

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}

_HTTP_BIND = env_str("HTTP_BIND", "127.0.0.1:8000")
_UDP_BIND = env_str("SIP_UDP_BIND", "127.0.0.1:5060")

# The SIP namespace: everything the SIP side reads, in one place (see README for each).
SIP = {
    "HTTP_BIND": _HTTP_BIND,
    "UDP_BIND": _UDP_BIND,
    "TCP_BIND": env_str("SIP_TCP_BIND", "127.0.0.1:5060"),
    "DOMAINS": [d.lower() for d in env_list("SIP_DOMAINS", "localhost")],
    "ADVERTISED_ADDRESS": env_str("SIP_ADVERTISED_ADDRESS", ""),
    "SECRET": env_str("SIP_SECRET", "") or SECRET_KEY,
    "NONCE_LIFETIME": env_int("SIP_NONCE_LIFETIME", 300),
    "REGISTER_MIN_EXPIRES": env_int("SIP_REGISTER_MIN_EXPIRES", 60),
    "REGISTER_MAX_EXPIRES": env_int("SIP_REGISTER_MAX_EXPIRES", 3600),
    "REGISTER_DEFAULT_EXPIRES": env_int("SIP_REGISTER_DEFAULT_EXPIRES", 600),
    "MAX_CONTACTS_PER_AOR": env_int("SIP_MAX_CONTACTS_PER_AOR", 10),
    "MAX_MESSAGE_SIZE": env_int("SIP_MAX_MESSAGE_SIZE", 65536),
    "RATE_LIMIT": env_int("SIP_RATE_LIMIT", 500),
    "UDP_RCVBUF": env_int("SIP_UDP_RCVBUF", 8 * 1024 * 1024),
    "WS_ALLOWED_ORIGINS": env_list("SIP_WS_ALLOWED_ORIGINS", ""),
    # The presence engine (Kamailio presence module: min_expires, max_expires, ...).
    "SUBSCRIBE_MIN_EXPIRES": env_int("PRESENCE_SUBSCRIBE_MIN_EXPIRES", 60),
    "SUBSCRIBE_MAX_EXPIRES": env_int("PRESENCE_SUBSCRIBE_MAX_EXPIRES", 3600),
    "SUBSCRIBE_DEFAULT_EXPIRES": env_int("PRESENCE_SUBSCRIBE_DEFAULT_EXPIRES", 3600),
    "PUBLISH_MIN_EXPIRES": env_int("PRESENCE_PUBLISH_MIN_EXPIRES", 60),
    "PUBLISH_MAX_EXPIRES": env_int("PRESENCE_PUBLISH_MAX_EXPIRES", 3600),
    "PUBLISH_DEFAULT_EXPIRES": env_int("PRESENCE_PUBLISH_DEFAULT_EXPIRES", 3600),
    "SUBSCRIBE_STATUS": env_int("PRESENCE_SUBSCRIBE_STATUS", 200),
    "NEUTRAL_BODY": env_str("PRESENCE_NEUTRAL_BODY", "none"),
    "MAX_SUBSCRIPTIONS_PER_USER": env_int("PRESENCE_MAX_SUBSCRIPTIONS_PER_USER", 1000),
    "MAX_PUBLICATIONS_PER_USER": env_int("PRESENCE_MAX_PUBLICATIONS_PER_USER", 100),
    "EXPIRY_INTERVAL": env_int("PRESENCE_EXPIRY_INTERVAL", 1),
    # Authorization (Kamailio presence_xml force_active; RFC 5025 pres-rules otherwise).
    "FORCE_ACTIVE": env_bool("PRESENCE_FORCE_ACTIVE", False),
    "DEFAULT_POLICY": env_str("PRESENCE_DEFAULT_POLICY", "confirm"),
}
if SIP["DEFAULT_POLICY"] not in ("confirm", "allow-same-domain", "allow"):
    raise ValueError("PRESENCE_DEFAULT_POLICY must be confirm, allow-same-domain or allow")

# The XCAP server (RFC 4825) under /xcap-root/ (see README and docs/xcap.md).
XCAP = {
    # RFC 4825 §14: Basic only where TLS protects it, so off unless asked for.
    "ALLOW_BASIC": env_bool("XCAP_ALLOW_BASIC", False),
    # Larger request bodies get 413; writes that would grow a document past it get 409.
    "MAX_DOCUMENT_SIZE": env_int("XCAP_MAX_DOCUMENT_SIZE", 1024 * 1024),
}
