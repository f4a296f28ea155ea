"""Digest authentication of SIP requests against SipAccount (RFC 3261 §22, RFC 7616).

Runs inside the request's one database call: the HA1 lookup and the decision together.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..core.digest import authenticate, challenge
from ..core.message import Request, Response, make_response
from ..models import SipAccount
from . import ephemeral
from .logonce import log_once

log = logging.getLogger("sipws.auth")
# Clients differ in which WWW-Authenticate they read when offered several: sipp and many
# phones take the first, JsSIP and SIP.js keep the last, capable ones pick the strongest
# (RFC 7616 §3.7). MD5 at both ends serves all three with the same nonce.
CHALLENGE_ORDER = ("MD5", "SHA-256", "MD5")


@dataclass
class AuthOutcome:
    account: SipAccount | None
    response: Response | None


def authenticate_request(
    server, request: Request, realm: str, *, proxy: bool = False
) -> AuthOutcome:
    """Return the authenticated, enabled account, or the 401/407/403 to answer with."""
    header = "Proxy-Authorization" if proxy else "Authorization"
    found: dict[str, SipAccount] = {}

    def lookup_ha1(username: str, algorithm: str) -> str | None:
        if ephemeral.is_ephemeral(username):  # `<expiry>:<user>@<domain>` from the web page
            found["account"], ha1 = ephemeral.lookup(username, realm, algorithm, now)
            return ha1
        account = SipAccount.objects.filter(username=username, domain=realm, enabled=True).first()
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


def challenge_response(server, request, realm, stale, proxy, now) -> Response:
    response = make_response(request, 407 if proxy else 401)
    name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    nonce = server.nonces.make(now)
    for algorithm in CHALLENGE_ORDER:
        response.headers.add(name, challenge(realm, nonce, algorithm, stale=stale))
    return response
