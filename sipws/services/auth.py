"""Digest authentication of SIP requests against SipAccount (RFC 3261 §22, RFC 7616).

Runs inside the request's one database call: the HA1 lookup and the decision together.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import unquote

from ..core.digest import authenticate, challenge
from ..core.errors import ParseError
from ..core.message import Request, Response, make_response
from ..models import SipAccount
from . import ephemeral
from .accounts import enabled_account
from .logonce import log_once

log = logging.getLogger("sipws.auth")


def challenge_order(algorithms: list[str]) -> tuple[str, ...]:
    """The WWW-Authenticate headers of a 401, one per algorithm offered.

    Clients differ in which one they read when offered several: sipp and many phones
    take the first, JsSIP and SIP.js keep the last, capable ones pick the strongest
    (RFC 7616 §3.7). With both offered, MD5 at both ends serves all three with one nonce.
    Some clients (baresip 1.0) give up on seeing SHA-256 at all: SIP_DIGEST_ALGORITHMS=MD5.
    """
    if algorithms == ["MD5", "SHA-256"] or algorithms == ["SHA-256", "MD5"]:
        return ("MD5", "SHA-256", "MD5")
    return tuple(algorithms)


@dataclass
class AuthOutcome:
    account: SipAccount | None
    response: Response | None


def authenticate_request(
    server, request: Request, realm: str, *, proxy: bool = False, source: str | None = None
) -> AuthOutcome:
    """Return the authenticated, enabled account, or the 401/407/403 to answer with.

    A request from a trusted peer (`source` in SIP_TRUSTED_PEERS) skips digest: the
    sender is the account its From names, as Kamailio's permissions module allows.
    """
    if source is not None and server.config.trusts(source):
        return _trusted_sender(request, realm)
    header = "Proxy-Authorization" if proxy else "Authorization"
    found: dict[str, SipAccount] = {}

    def lookup_ha1(username: str, algorithm: str) -> str | None:
        if ephemeral.is_ephemeral(username):  # `<expiry>:<user>@<domain>` from the web page
            found["account"], ha1 = ephemeral.lookup(username, realm, algorithm, now)
            found["ephemeral"] = True
            return ha1
        account = enabled_account(username, realm)
        if account is None:
            return None
        found["account"] = account
        return account.ha1_for(algorithm)

    now = time.time()
    result = authenticate(
        request.headers.get_all(header),
        method=request.method,
        realm=realm,
        lookup_ha1=lookup_ha1,
        nonces=server.nonces,
        replay=server.replay,
        now=now,
        body=request.body,
    )
    if result.ok:
        return AuthOutcome(found["account"], None)
    if result.reason == "unknown user" and "ephemeral" in found:
        # Expired (or foreign) short-lived credentials: a new challenge tells the client
        # to come back with fresh ones, where 403 would end its registration for good.
        return AuthOutcome(None, challenge_response(server, request, realm, False, proxy, now))
    if result.reason in ("unknown user", "wrong password"):
        log_once(
            log,
            f"auth:{result.username}@{realm}:{result.reason}",
            "authentication failed for %s@%s: %s",
            result.username,
            realm,
            result.reason,
        )
        return AuthOutcome(None, make_response(request, 403, f"Forbidden ({result.reason})"))
    return AuthOutcome(None, challenge_response(server, request, realm, result.stale, proxy, now))


def _trusted_sender(request: Request, realm: str) -> AuthOutcome:
    try:
        uri = request.from_.sip_uri
    except ParseError:
        return AuthOutcome(None, make_response(request, 403, "Forbidden (From is not a SIP URI)"))
    account = None
    if uri.user and uri.host.lower() == realm.lower():
        account = enabled_account(unquote(uri.user), realm.lower())
    if account is None:
        return AuthOutcome(None, make_response(request, 403, "Forbidden (unknown sender)"))
    return AuthOutcome(account, None)


def challenge_response(server, request, realm, stale, proxy, now) -> Response:
    response = make_response(request, 407 if proxy else 401)
    name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    nonce = server.nonces.make(now)
    for algorithm in challenge_order(server.config.digest_algorithms):
        response.headers.add(name, challenge(realm, nonce, algorithm, stale=stale))
    return response
