"""Checks SUBSCRIBE and PUBLISH share: the event package, Expires bounds, addresses, auth."""

from __future__ import annotations

from urllib.parse import unquote

from ..core.errors import ParseError
from ..core.message import Request, Response, make_response
from ..event_packages import base as packages
from .auth import authenticate_request


class Reject(Exception):
    """Stop handling a request and answer with `response`."""

    def __init__(self, response: Response) -> None:
        self.response = response


def event_package(request: Request, *, publishing: bool = False) -> packages.EventPackage:
    """The package named by Event (RFC 6665 §8.2.1): 489 with Allow-Events if unknown."""
    try:
        event = request.event
    except ParseError:
        event = None
    package = packages.for_event(event.package, event.params) if event is not None else None
    if package is None or (publishing and not package.publishable):
        response = make_response(request, 489)
        response.headers.add("Allow-Events", ", ".join(packages.names()))
        raise Reject(response)
    return package


def bounded_expires(request: Request, bounds: tuple[int, int, int]) -> int:
    """Expires from the request, 423 + Min-Expires below the minimum, capped at the maximum."""
    minimum, maximum, default = bounds
    try:
        expires = request.expires
    except ParseError:
        raise Reject(make_response(request, 400, "Bad Request (bad Expires)")) from None
    if expires is None:
        expires = default
    if 0 < expires < minimum:
        response = make_response(request, 423)
        response.headers.add("Min-Expires", str(minimum))
        raise Reject(response)
    return min(expires, maximum)


def resource_aor(server, request: Request) -> str:
    """The presentity the request is about: its Request-URI as sip:user@domain, or 404."""
    uri = request.sip_uri
    if not uri.user or not server.config.serves_domain(uri.host):
        raise Reject(make_response(request, 404, "Not Found (no such presentity)"))
    return f"sip:{unquote(uri.user)}@{uri.host.lower()}"


def sender_aor(request: Request) -> str:
    try:
        uri = request.from_.sip_uri
    except ParseError:
        raise Reject(make_response(request, 403, "Forbidden (From is not a SIP URI)")) from None
    return uri.aor


def authenticated_sender(
    server, request: Request, *, proxy: bool = False, source: str | None = None
):
    """The enabled account that sent this request (digest), matching its From; else reject.

    `proxy`: the request is relayed (MESSAGE), so the challenge is a 407 (RFC 3261 §22.3).
    `source`: the address it came from, which may be a trusted peer (SIP_TRUSTED_PEERS).
    """
    aor = sender_aor(request)
    domain = aor.rpartition("@")[2]
    if not server.config.serves_domain(domain):
        raise Reject(make_response(request, 403, "Forbidden (From domain not served)"))
    outcome = authenticate_request(server, request, domain, proxy=proxy, source=source)
    if outcome.response is not None:
        raise Reject(outcome.response)
    if outcome.account.aor != aor:
        raise Reject(make_response(request, 403, "Forbidden (From is not the authenticated user)"))
    return outcome.account
