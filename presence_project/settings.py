"""Settings, all from environment variables with safe defaults (documented in README.md).

Unset DATABASE_URL and REDIS_URL give the embedded default: SQLite in WAL mode and an
in-process channel layer, one process. Setting both gives the scale-out mode.
"""

import asyncio
import ipaddress
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


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


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
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "sipws",
    "xcapapi",
    "mwi",
    "frontend",
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
            "CONFIG": {
                # channels_redis blocks 5 s per receive (BZPOPMIN); redis-py's default
                # socket timeout is 5 s as well, so idle receivers would race it and die
                # with TimeoutError (a WebSocket closed with 1011). Give reads room.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "capacity": env_int("SIP_LAYER_CAPACITY", 1000),  # per WebSocket consumer
                # The workers' shared channel and each node's own carry every UDP/TCP
                # message and forwarded response of the cluster: room for bursts.
                "channel_capacity": {
                    "sipworker": env_int("SIP_WORKER_CAPACITY", 100_000),
                    "sipws.node.*": env_int("SIP_WORKER_CAPACITY", 100_000),
                },
            },
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
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # collectstatic's target, empty until used

# LOG_FORMAT=plain|json; lines logged while a SIP message is handled carry its Call-ID
# and method (sipws.observability.logcontext).
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ValueError("LOG_FORMAT must be plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"sip": {"()": "sipws.observability.logcontext.SipContextFilter"}},
    "formatters": {
        "plain": {
            "()": "sipws.observability.logcontext.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
        "json": {"()": "sipws.observability.logcontext.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["sip"],
        }
    },
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
    "DIGEST_ALGORITHMS": [a.upper() for a in env_list("SIP_DIGEST_ALGORITHMS", "MD5,SHA-256")],
    "REGISTER_MIN_EXPIRES": env_int("SIP_REGISTER_MIN_EXPIRES", 60),
    "REGISTER_MAX_EXPIRES": env_int("SIP_REGISTER_MAX_EXPIRES", 3600),
    "REGISTER_DEFAULT_EXPIRES": env_int("SIP_REGISTER_DEFAULT_EXPIRES", 600),
    "MAX_CONTACTS_PER_AOR": env_int("SIP_MAX_CONTACTS_PER_AOR", 10),
    "MAX_MESSAGE_SIZE": env_int("SIP_MAX_MESSAGE_SIZE", 65536),
    "RATE_LIMIT": env_int("SIP_RATE_LIMIT", 500),
    "UDP_RCVBUF": env_int("SIP_UDP_RCVBUF", 8 * 1024 * 1024),
    "WS_ALLOWED_ORIGINS": env_list("SIP_WS_ALLOWED_ORIGINS", ""),
    # Short-lived credentials for the web page (POST /api/sip-credentials/): the TURN REST
    # scheme of Kamailio's auth_ephemeral. Empty secret: one derived from SIP_SECRET.
    "EPHEMERAL_SECRET": env_str("SIP_EPHEMERAL_SECRET", ""),
    "EPHEMERAL_LIFETIME": env_int("SIP_EPHEMERAL_LIFETIME", 3600),
    "EPHEMERAL_HMAC": env_str("SIP_EPHEMERAL_HMAC", "sha256").lower(),
    "WS_URL": env_str("SIP_WS_URL", ""),
    # MESSAGE relay (RFC 3428) and offline storage (Kamailio msilo).
    "MESSAGE_TIMEOUT": env_float("SIP_MESSAGE_TIMEOUT", 30),
    "OFFLINE_MESSAGES": env_bool("SIP_OFFLINE_MESSAGES", False),
    "OFFLINE_MAX_MESSAGES": env_int("SIP_OFFLINE_MAX_MESSAGES", 100),
    "OFFLINE_MAX_BYTES": env_int("SIP_OFFLINE_MAX_BYTES", 1024 * 1024),
    "OFFLINE_MAX_AGE": env_int("SIP_OFFLINE_MAX_AGE", 3 * 24 * 3600),
    # Where `manage.py presence` reaches the process owning the SIP sockets; empty: nowhere.
    "CONTROL_SOCKET": env_str("SIP_CONTROL_SOCKET", str(DATA_DIR / "control.sock")),
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
    # Dialog state (Kamailio presence_dialoginfo) and shared lines (dialog;sla).
    "DIALOG_FORCE_SINGLE": env_bool("PRESENCE_DIALOG_FORCE_SINGLE", False),
    "DIALOG_FORCE_DUMMY": env_bool("PRESENCE_DIALOG_FORCE_DUMMY", False),
    "SLA_GROUPS": env_str("PRESENCE_SLA_GROUPS", ""),
    # Peers whose requests skip digest, the sender taken from From (Kamailio permissions).
    "TRUSTED_PEERS": env_list("SIP_TRUSTED_PEERS", ""),
    # Scale-out: node leases (services/leases) and the channel layer's message size.
    "NODE_HEARTBEAT": env_float("SIP_NODE_HEARTBEAT", 2),
    "NODE_LEASE": env_float("SIP_NODE_LEASE", 10),
    "LAYER_MAX_MESSAGE_SIZE": env_int("SIP_LAYER_MAX_MESSAGE_SIZE", 1024 * 1024),
}
for _peer in SIP["TRUSTED_PEERS"]:
    ipaddress.ip_network(_peer, strict=False)  # ValueError names a bad entry
if not 0 < SIP["NODE_HEARTBEAT"] < SIP["NODE_LEASE"]:
    raise ValueError("SIP_NODE_HEARTBEAT must be above 0 and below SIP_NODE_LEASE")
if not SIP["DIGEST_ALGORITHMS"] or set(SIP["DIGEST_ALGORITHMS"]) - {"MD5", "SHA-256"}:
    raise ValueError("SIP_DIGEST_ALGORITHMS must list MD5 and/or SHA-256")
if SIP["DEFAULT_POLICY"] not in ("confirm", "allow-same-domain", "allow"):
    raise ValueError("PRESENCE_DEFAULT_POLICY must be confirm, allow-same-domain or allow")
if SIP["EPHEMERAL_HMAC"] not in ("sha1", "sha256"):
    raise ValueError("SIP_EPHEMERAL_HMAC must be sha1 or sha256")
if not 0 < SIP["MESSAGE_TIMEOUT"] <= 30:
    # Past 32 s (64*T1) the sender's transaction has given up and ours forgot the request.
    raise ValueError("SIP_MESSAGE_TIMEOUT must be above 0 and at most 30 seconds")

# The XCAP server (RFC 4825) under /xcap-root/ (see README and docs/xcap.md).
XCAP = {
    # RFC 4825 §14: Basic only where TLS protects it, so off unless asked for.
    "ALLOW_BASIC": env_bool("XCAP_ALLOW_BASIC", False),
    # Larger request bodies get 413; writes that would grow a document past it get 409.
    "MAX_DOCUMENT_SIZE": env_int("XCAP_MAX_DOCUMENT_SIZE", 1024 * 1024),
    # Rules on an external XCAP server (Kamailio's xcap_client; unset: the integrated one).
    "EXTERNAL_ROOT": env_str("XCAP_EXTERNAL_ROOT", "").rstrip("/"),
    "EXTERNAL_USER": env_str("XCAP_EXTERNAL_USER", ""),
    "EXTERNAL_PASSWORD": env_str("XCAP_EXTERNAL_PASSWORD", ""),
    "EXTERNAL_POLL_INTERVAL": env_float("XCAP_EXTERNAL_POLL_INTERVAL", 300),
    "EXTERNAL_TIMEOUT": env_float("XCAP_EXTERNAL_TIMEOUT", 3),
}
if XCAP["EXTERNAL_ROOT"] and urlparse(XCAP["EXTERNAL_ROOT"]).scheme not in ("http", "https"):
    raise ValueError("XCAP_EXTERNAL_ROOT must be an http:// or https:// URL")

# The MWI REST API (RFC 3842 message-summary) under /api/mwi/ (see README).
MWI = {
    # Largest message count the REST API accepts; RFC 3842 caps counts at 2^32-1.
    "MAX_COUNT": env_int("MWI_MAX_COUNT", 999_999),
}
if not 1 <= MWI["MAX_COUNT"] <= 2**32 - 1:
    raise ValueError("MWI_MAX_COUNT must be between 1 and 4294967295")

# /metrics (Prometheus): who may scrape, by address (IPs or networks, `*` for anyone) or
# by `Authorization: Bearer METRICS_TOKEN`. /healthz answers anyone.
METRICS = {
    "ALLOWED_IPS": env_list("METRICS_ALLOWED_IPS", "127.0.0.1,::1"),
    "TOKEN": env_str("METRICS_TOKEN", ""),
}
for _network in METRICS["ALLOWED_IPS"]:
    if _network != "*":
        ipaddress.ip_network(_network, strict=False)  # ValueError names a bad entry

# DRF: each view names its own authentication; the OpenAPI schema at /api/schema/.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "sipws presence server API",
    "DESCRIPTION": "Message-waiting injection (RFC 3842) and operations of the SIP presence "
    "server. XCAP (RFC 4825) lives at /xcap-root/ and is described by its RFC.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/",
    "PREPROCESSING_HOOKS": ["presence_project.openapi.api_paths_only"],
    # Swagger UI from our own static files: browsers in closed networks reach no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
