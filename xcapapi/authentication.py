"""Who is asking: HTTP Digest with the user's SIP credentials, Basic if allowed, the session.

RFC 4825 §8 requires Digest. Clients authenticate as SIP phones do: the user part of
their SIP URI as username and their SIP domain as realm, so the stored HA1 hashes of
`SipAccount` serve unchanged (MD5 and SHA-256, offered in that order). Basic
(XCAP_ALLOW_BASIC=1) checks the password against the same hashes; RFC 4825 §14 allows it
only under TLS. A Django session serves the web page, CSRF-checked on writes.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication

from sipws.core.digest import (
    MemoryReplayGuard,
    NonceFactory,
    authenticate,
    challenge,
    ha1,
    parse_credentials,
)
from sipws.models import SipAccount

from .uri import raw_path

log = logging.getLogger("xcapapi.auth")
ALGORITHMS = ("MD5", "SHA-256")  # MD5 first: many clients read only the first challenge


@dataclass(frozen=True)
class SipPrincipal:
    """The SIP account a request authenticated as; stands in for request.user."""

    account: SipAccount
    is_authenticated = True
    is_anonymous = False

    @property
    def aor(self) -> str:
        return self.account.aor

    @property
    def is_staff(self) -> bool:
        user = self.account.user
        return bool(user is not None and user.is_active and user.is_staff)

    def __str__(self) -> str:
        return str(self.account)


class _LockedReplayGuard:
    """The in-process nonce-count memory, safe from the worker threads of sync views."""

    def __init__(self, lifetime: float) -> None:
        self._guard = MemoryReplayGuard(lifetime=lifetime)
        self._lock = threading.Lock()

    def seen(self, nonce: str, nc: int, now: float) -> bool:
        with self._lock:
            return self._guard.seen(nonce, nc, now)


@functools.cache
def nonce_factory() -> NonceFactory:
    # A key of its own, derived from the SIP secret: a SIP nonce is no HTTP nonce.
    key = hmac.new(settings.SIP["SECRET"].encode(), b"xcap http digest", hashlib.sha256)
    return NonceFactory(key.digest(), settings.SIP["NONCE_LIFETIME"])


@functools.cache
def replay_guard():
    lifetime = settings.SIP["NONCE_LIFETIME"]
    if settings.REDIS_URL:
        from sipws.services.replay import RedisReplayGuard

        return RedisReplayGuard(settings.REDIS_URL, lifetime)
    return _LockedReplayGuard(lifetime)


def _served(domain: str) -> bool:
    return domain.lower() in settings.SIP["DOMAINS"]


def realm_for(request) -> str:
    """The realm to challenge with: the XUI's domain when this server serves it."""
    target = getattr(request, "xcap_target", None)
    domain = getattr(target, "domain", None)
    return domain if domain and _served(domain) else settings.SIP["DOMAINS"][0]


def challenges(request, *, stale: bool = False) -> list[str]:
    """The WWW-Authenticate values of a 401, in the order they are offered."""
    realm = realm_for(request)
    nonce = nonce_factory().make(time.time())
    values = [challenge(realm, nonce, algorithm, stale=stale) for algorithm in ALGORITHMS]
    if settings.XCAP["ALLOW_BASIC"]:
        values.append(f'Basic realm="{realm}", charset="UTF-8"')
    return values


def _enabled_account(username: str, domain: str) -> SipAccount | None:
    return (
        SipAccount.objects.select_related("user")
        .filter(username=username, domain=domain.lower(), enabled=True)
        .first()
    )


def _authorization(request) -> str:
    return request.META.get("HTTP_AUTHORIZATION", "")


_URI_START = re.compile(r'(?:^|[\s,])uri\s*=\s*"', re.IGNORECASE)
_URI_END = re.compile(r'"\s*(?=,\s*[A-Za-z0-9_-]+\*?\s*=|$)')


def repair_digest_uri(header: str) -> str:
    """Escape the quotes of a node selector inside the digest `uri` parameter.

    Clients that put raw quotes in the path (SIP SIMPLE clients, curl -g) copy the path
    into `uri="..."` as it is, so the quoted string ends early. The parameter really ends
    at the quote that a `, name=` or the end of the header follows.
    """
    start = _URI_START.search(header)
    if start is None:
        return header
    end = _URI_END.search(header, start.end())
    if end is None:
        return header
    value = header[start.end() : end.start()]
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return header[: start.end()] + escaped + header[end.start() :]


class DigestAuthentication(BaseAuthentication):
    """HTTP Digest (RFC 7616) over the SIP accounts, sharing sipws' digest code."""

    def authenticate(self, request):
        header = _authorization(request)
        if header[:7].lower() != "digest ":
            return None
        credentials = parse_credentials(header)
        if credentials is None:
            header = repair_digest_uri(header)
            credentials = parse_credentials(header)
        if credentials is None or not _served(credentials.realm):
            raise exceptions.AuthenticationFailed("bad digest credentials")
        # The digest covers the URI the client names: it must be this request's.
        try:
            named = unquote(urlsplit(credentials.uri).path)
        except ValueError:
            named = None
        if named != unquote(raw_path(request._request)):
            raise exceptions.ParseError("digest uri does not match the request")
        found: dict[str, SipAccount] = {}

        def lookup_ha1(username: str, algorithm: str) -> str | None:
            account = _enabled_account(username, credentials.realm)
            if account is None:
                return None
            found["account"] = account
            return account.ha1_for(algorithm)

        qop = (credentials.qop or "").lower()
        result = authenticate(
            [header],
            method=request.method,
            realm=credentials.realm,
            lookup_ha1=lookup_ha1,
            nonces=nonce_factory(),
            replay=replay_guard(),
            now=time.time(),
            body=request._request.body if qop == "auth-int" else b"",
        )
        if not result.ok:
            request.xcap_stale = result.stale
            if not result.stale:
                log.info("XCAP digest failed for %s: %s", result.username, result.reason)
            raise exceptions.AuthenticationFailed(result.reason)
        return SipPrincipal(found["account"]), "digest"

    def authenticate_header(self, request):
        return challenges(request)[0]


class BasicAuthentication(BaseAuthentication):
    """Basic with the SIP password, only when XCAP_ALLOW_BASIC=1.

    The username is `user@domain`, or just `user` for the XUI's domain.
    """

    def authenticate(self, request):
        header = _authorization(request)
        if not settings.XCAP["ALLOW_BASIC"] or header[:6].lower() != "basic ":
            return None
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            raise exceptions.AuthenticationFailed("bad basic credentials") from None
        try:
            text = decoded.decode("utf-8")
        except UnicodeDecodeError:
            text = decoded.decode("latin-1")
        login, colon, password = text.partition(":")
        if not colon:
            raise exceptions.AuthenticationFailed("bad basic credentials")
        username, at, domain = login.rpartition("@")
        if not at:
            username, domain = login, realm_for(request)
        account = _enabled_account(username, domain) if _served(domain) else None
        expected = account.ha1_md5 if account else ""
        given = ha1(username, domain.lower(), password, "MD5")
        if account is None or not hmac.compare_digest(expected, given):
            log.info("XCAP basic authentication failed for %s@%s", username, domain)
            raise exceptions.AuthenticationFailed("wrong user name or password")
        return SipPrincipal(account), "basic"

    def authenticate_header(self, request):
        return f'Basic realm="{realm_for(request)}"'


class XcapSessionAuthentication(SessionAuthentication):
    """The Django session of the web page; DRF checks CSRF on unsafe methods."""
