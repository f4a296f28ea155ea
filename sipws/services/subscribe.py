"""SUBSCRIBE (RFC 6665 §4.2.1): create, refresh, fetch and end subscriptions of any package.

The engine knows no package by name: the Event header picks the package, which supplies
the state (aggregate or neutral) and the per-watcher view. One database call per
SUBSCRIBE; the NOTIFY follows the response.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ..core.errors import ParseError
from ..core.flow import Flow
from ..core.message import Request, make_response, new_tag
from ..event_packages.base import Publication, media_type
from ..models import ActiveWatcher, Presentity, SubscriptionStatus
from . import dbthread, notify, ordering, policy, watchers
from .accounts import enabled_account
from .common import Reject, authenticated_sender, bounded_expires, event_package, resource_aor
from .dbthread import in_db_thread
from .rows import Table


async def handle_subscribe(server, request: Request, flow: Flow):
    try:
        package = event_package(request)
        expires = bounded_expires(request, server.config.subscribe_expires)
        _check_accept(request, package)
        presentity = _presentity(server, request)
        if not request.contacts:
            raise Reject(make_response(request, 400, "Bad Request (missing Contact)"))
    except Reject as reject:
        return reject.response
    return await ordering.change(
        server, presentity, lambda: _subscribe(server, request, flow, package, expires, presentity)
    )


def _presentity(server, request: Request) -> str:
    """In a dialog the Request-URI is our Contact; the presentity is the To address."""
    if request.to.tag:
        try:
            return request.to.sip_uri.aor
        except ParseError:
            raise Reject(make_response(request, 481)) from None
    return resource_aor(server, request)


def _check_accept(request: Request, package) -> None:
    """Accept negotiation (RFC 6665 §4.2.1.1): 406 if the package's type is not accepted."""
    accepted = [media_type(value) for value in request.headers.get_all("Accept")]
    if not accepted:
        return
    for offered in package.content_types:
        kind = offered.split("/")[0]
        if offered in accepted or "*/*" in accepted or f"{kind}/*" in accepted:
            return
    response = make_response(request, 406)
    response.headers.add("Accept", ", ".join(package.content_types))
    raise Reject(response)


def do_subscribe(server, request, flow, package, expires, presentity):
    try:
        account = authenticated_sender(server, request, source=flow.remote_host)
        with dbthread.atomic(), policy.batch():
            ordering.lock_presentities([presentity])
            if request.to.tag:
                return _refresh(server, request, flow, package, expires, account)
            return _create(server, request, flow, package, expires, presentity, account)
    except Reject as reject:
        return reject.response, []


_subscribe = in_db_thread(do_subscribe)


def _create(server, request, flow, package, expires, presentity, account):
    username, _, domain = presentity.removeprefix("sip:").rpartition("@")
    if enabled_account(username, domain) is None:
        raise Reject(make_response(request, 404, "Not Found (no such presentity)"))
    limit = server.config.max_subscriptions_per_user
    if active_watchers.count('"watcher_uri" = %s', [account.aor]) >= limit:
        response = make_response(request, 503, "Service Unavailable (too many subscriptions)")
        response.headers.add("Retry-After", "60")
        raise Reject(response)
    decision = policy.decide(package.name, account.aor, presentity)
    if decision.status == policy.FORBIDDEN.status:
        raise Reject(make_response(request, 403, f"Forbidden ({decision.reason})"))
    now = datetime.now(UTC)
    event = request.event
    watcher = active_watchers.new(
        presentity_uri=presentity,
        watcher_uri=account.aor,
        watcher_display=request.from_.display_name or "",
        event=package.name,
        event_id=event.id or "",
        call_id=request.call_id,
        from_tag=request.from_.tag or "",
        to_tag=new_tag(),
        remote_cseq=request.cseq.number,
        contact=str(request.contacts[0].uri),
        route_set="\n".join(request.headers.get_all("Record-Route")),
        flow=flow.serialize(),
        connection=flow.connection,
        node=server.config.node,
        accept=", ".join(request.headers.get_all("Accept")),
        expires=now + timedelta(seconds=expires),
        status=decision.status,
        reason=decision.reason,
        user_agent=(request.headers.get("User-Agent") or "")[:255],
        local_cseq=1,  # stored with the row: the CSeq of the first NOTIFY, built below
    )
    active_watchers.insert(watcher)
    watcher.local_cseq = 0  # `_answer` counts it up to 1 for that NOTIFY
    reason = "rejected" if decision.status == SubscriptionStatus.TERMINATED else "subscribe"
    told = watchers.report(server, [watchers.started(watcher, reason)])
    response, outgoing = _answer(server, request, flow, package, watcher, expires, new=True)
    return response, outgoing + told


def _refresh(server, request, flow, package, expires, account):
    watcher = active_watchers.first(
        '"call_id" = %s AND "from_tag" = %s AND "to_tag" = %s',
        [request.call_id, request.from_.tag or "", request.to.tag],
        for_update=True,
    )
    if watcher is None or watcher.event != package.name:
        raise Reject(make_response(request, 481))
    if watcher.watcher_uri != account.aor:
        raise Reject(make_response(request, 403, "Forbidden (not your subscription)"))
    if request.cseq.number <= watcher.remote_cseq:
        raise Reject(make_response(request, 500, "Server Internal Error (CSeq out of order)"))
    watcher.remote_cseq = request.cseq.number
    watcher.expires = datetime.now(UTC) + timedelta(seconds=expires)
    watcher.flow = flow.serialize()  # a client that reconnected is reached on its new flow
    watcher.connection = flow.connection
    watcher.node = server.config.node  # ... which may be held by another node
    watcher.contact = str(request.contacts[0].uri)
    if expires:  # an unsubscribe's row is deleted once its final NOTIFY is built
        active_watchers.save_fields(
            watcher, "remote_cseq", "expires", "flow", "connection", "node", "contact"
        )
    return _answer(server, request, flow, package, watcher, expires)


def _answer(server, request, flow, package, watcher, expires, *, new=False):
    """The 200/202 and the immediate NOTIFY; Expires: 0 makes it the final one (fetch).

    A `new` subscription's row already holds that NOTIFY's CSeq; a final NOTIFY's row
    is deleted here: neither needs the CSeq written.
    """
    reason = None
    if expires == 0:
        reason = "timeout"
    elif watcher.status == SubscriptionStatus.TERMINATED:
        reason = watcher.reason or "rejected"
    state = current_state(package, watcher.presentity_uri)
    store_cseq = not new and reason is None
    outgoing = notify.prepare(server, [watcher], state, reason=reason, store_cseq=store_cseq)
    if reason is not None:
        active_watchers.delete_ids([watcher.pk])
        if reason == "timeout":  # the watcher's own unsubscribe or fetch
            outgoing += watchers.report(server, [watchers.ended(watcher, reason)])
    response = make_response(request, server.config.subscribe_status, to_tag=watcher.to_tag)
    response.headers.add("Expires", str(expires))
    response.headers.add("Contact", notify.server_contact(server, flow))
    for route in request.headers.get_all("Record-Route"):
        response.headers.add("Record-Route", route)
    return response, outgoing


presentities = Table(Presentity)
active_watchers = notify.active_watchers


# Publications that do not come from PUBLISH (a pidf-manipulation document over XCAP):
# per package, functions giving a presentity's extra publications.
publication_sources: dict[str, list[Callable[[str], list[Publication]]]] = {}


def current_state(
    package, presentity: str, now: datetime | None = None, *, exclude: str | None = None
) -> bytes | None:
    """The package's view of all live publications, or its neutral state.

    `exclude` leaves out what that user published (a watcher's own state, dialog;sla).
    """
    where = '"uri" = %s AND "event" = %s AND "expires" > %s'
    params = [presentity, package.name, now or datetime.now(UTC)]
    if exclude is not None:
        where += ' AND "publisher" <> %s'
        params.append(exclude)
    # The five columns a Publication needs, not model instances of whole rows.
    rows = presentities.execute(f"{_PUBLICATIONS} WHERE {where}", params)
    publications = [
        Publication(bytes(body), content_type, etag, received_time, sender)
        for body, content_type, etag, received_time, sender in rows
    ]
    for source in publication_sources.get(package.name, ()):
        publications += source(presentity)
    publications.sort(key=lambda p: p.received_time, reverse=True)
    if publications:
        return package.aggregate(presentity, publications)
    return package.neutral_body(presentity)


_PUBLICATIONS = (
    f'SELECT "body", "content_type", "etag", "received_time", "sender" FROM {presentities.name}'
)


def watchers_of(presentity: str, event: str) -> list[ActiveWatcher]:
    return active_watchers.select(
        '"presentity_uri" = %s AND "event" = %s AND "status" <> %s',
        [presentity, event, SubscriptionStatus.TERMINATED.value],
    )


def notify_watchers(server, presentity: str, package) -> list[notify.Outgoing]:
    """NOTIFYs of the new state to a presentity's watchers; nobody watching, no state built."""
    watchers = watchers_of(presentity, package.name)
    if not watchers:
        return []
    return notify.prepare(server, watchers, current_state(package, presentity))
