"""NOTIFY (RFC 6665 §4.2.2): build one per watcher inside the database work, send after it.

`prepare()` runs in the request's database call: it bumps each dialog's local CSeq in
one UPDATE and returns ready-to-send `Outgoing` messages, so a restart never reuses a
CSeq. `send()` runs on the event loop after the commit; a watcher whose flow is gone or
whose NOTIFY fails with 404/408/481 loses that subscription only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from django.db.models import F

from ..core.errors import ParseError
from ..core.flow import Flow
from ..core.message import Headers, Request
from ..core.uri import SipUri
from ..event_packages import base as packages
from ..models import ActiveWatcher, SubscriptionStatus
from . import dbthread, policy
from .dbthread import in_db_thread
from .ordering import lock_presentities
from .rows import Table

log = logging.getLogger("sipws.notify")
ENDS_SUBSCRIPTION = frozenset({404, 408, 481})


class Outgoing(NamedTuple):
    """A NOTIFY built and numbered in the database work, to send once it is committed.
    (A named tuple: a frozen dataclass took four times as long to make, per watcher.)"""

    watcher_id: int
    flow: Flow
    data: bytes
    branch: str
    final: bool  # the subscription ends with this NOTIFY
    fallback: tuple[str, int] | None = None  # Contact address, for TCP after a restart


def server_contact(server, flow: Flow) -> str:
    return f"<sip:{server.config.address_for(flow.transport)};transport={flow.transport}>"


def state_header(watcher: ActiveWatcher, now: datetime, reason: str | None) -> str:
    if reason is not None:
        return f"terminated;reason={reason}"
    left = max(0, round((watcher.expires - now).total_seconds()))
    return f"{watcher.status};expires={left}"


# Packages whose state the server makes per subscription (presence.winfo: a version
# counter per subscription) register a function giving one subscription's full state.
active_watchers = Table(ActiveWatcher)

state_providers: dict[str, Callable[[ActiveWatcher], bytes | None]] = {}


def prepare(
    server,
    watchers: list[ActiveWatcher],
    state: bytes | None,
    *,
    reason: str | None = None,
    now: datetime | None = None,
    body_for: Callable[[ActiveWatcher], bytes | None] | None = None,
    store_cseq: bool = True,
) -> list[Outgoing]:
    """NOTIFYs for these watchers carrying `state` (None: no body); `reason` terminates.

    `body_for` gives each watcher its own body instead (partial watcher-info).
    `store_cseq=False` leaves the rows' CSeq alone: the caller deletes them in this
    transaction, or has just stored them with the CSeq this NOTIFY takes.
    """
    if not watchers:
        return []
    if store_cseq:
        active_watchers.increment("local_cseq", [w.pk for w in watchers])
    now = now or datetime.now(UTC)
    bodies: dict = {}  # one body per distinct view, not one per watcher
    out = []
    with policy.batch():
        for watcher in watchers:
            watcher.local_cseq += 1
            package = packages.get(watcher.event)
            body = _body(watcher, package, state, reason, body_for, bodies)
            out.append(_build(server, watcher, body, package, now, reason))
    return out


def _body(watcher, package, state, reason, body_for, bodies) -> bytes | None:
    # A fetch or unsubscribe still carries the state; pending or rejected watchers none.
    if watcher.status != SubscriptionStatus.ACTIVE or package is None:
        return None
    if reason not in (None, "timeout"):
        return None
    provider = body_for or state_providers.get(watcher.event)
    if provider is not None:
        return provider(watcher)
    decision = policy.decide(watcher.event, watcher.watcher_uri, watcher.presentity_uri)
    key = (watcher.event, decision.view_key)
    if package.excludes_own:
        key += (watcher.watcher_uri,)
    if key not in bodies:
        if package.excludes_own:
            from .subscribe import current_state

            state = current_state(package, watcher.presentity_uri, exclude=watcher.watcher_uri)
        bodies[key] = package.notify_body(state, decision.view)
    body = bodies[key]
    if package.versioned and body is not None:
        body = package.with_version(body, next_version(watcher))
    return body


def next_version(subscription: ActiveWatcher) -> int:
    """The version this subscription's next body carries (0, 1, 2, ...), then count up."""
    version = subscription.version
    ActiveWatcher.objects.filter(pk=subscription.pk).update(version=F("version") + 1)
    subscription.version += 1
    return version


def _build(server, watcher, body, package, now, reason) -> Outgoing:
    flow = Flow.deserialize(watcher.flow)
    branch = server.new_branch()
    address = server.config.address_for(flow.transport)
    fields = [
        ("Via", f"SIP/2.0/{flow.via_transport} {address};branch={branch};rport"),
        ("Max-Forwards", "70"),
        ("From", f"<{watcher.presentity_uri}>;tag={watcher.to_tag}"),
        ("To", f"<{watcher.watcher_uri}>;tag={watcher.from_tag}"),
        ("Call-ID", watcher.call_id),
        ("CSeq", f"{watcher.local_cseq} NOTIFY"),
    ]
    fields += [("Route", route) for route in filter(None, watcher.route_set.split("\n"))]
    event = watcher.event + (f";id={watcher.event_id}" if watcher.event_id else "")
    fields += [
        ("Contact", server_contact(server, flow)),
        ("Event", event),
        ("Subscription-State", state_header(watcher, now, reason)),
    ]
    if body is not None:
        fields.append(("Content-Type", package.content_types[0]))
    request = Request("NOTIFY", watcher.contact, Headers.adopt(fields), body or b"")
    return Outgoing(
        watcher.pk, flow, bytes(request), branch, reason is not None, _fallback(flow, watcher)
    )


def _fallback(flow: Flow, watcher: ActiveWatcher) -> tuple[str, int] | None:
    """Where a TCP watcher listens, if its connection is gone (after a restart)."""
    if flow.transport != "tcp" or watcher.route_set:
        return None
    try:
        uri = SipUri.parse(watcher.contact)
    except ParseError:
        return None
    return uri.host.strip("[]"), uri.port or 5060


async def send(server, outgoing: list[Outgoing]) -> None:
    """Send NOTIFYs; each failure ends only its own subscription."""
    gone = []
    for item in outgoing:
        delivered = await server.send_request(
            item.flow, item.data, item.branch, _on_final(server, item), item.fallback
        )
        if not delivered and not item.final:
            gone.append(item.watcher_id)
    if gone:
        log.info("ending %d subscriptions whose flow is gone", len(gone))
        await send(server, await in_db_thread(end_subscriptions)(server, gone))


def _on_final(server, item: Outgoing):
    async def on_final(status: int) -> None:
        if status in ENDS_SUBSCRIPTION and not item.final:
            log.info("NOTIFY answered %d: ending subscription %d", status, item.watcher_id)
            told = await in_db_thread(end_subscriptions)(server, [item.watcher_id])
            await send(server, told)

    return on_final


def end_subscriptions(server, ids: list[int]) -> list[Outgoing]:
    """Drop dead subscriptions; return what watcher-info subscribers are told of it."""
    from . import watchers

    presentities = list(ActiveWatcher.objects.filter(pk__in=ids).values_list("presentity_uri"))
    with dbthread.atomic():
        lock_presentities(uri for (uri,) in presentities)
        dead = list(ActiveWatcher.objects.filter(pk__in=ids))
        ActiveWatcher.objects.filter(pk__in=ids).delete()
        return watchers.report(server, [watchers.ended(w, "timeout") for w in dead])


def send_from_sync(server, outgoing: list[Outgoing]) -> None:
    """Send from synchronous code (an HTTP view's worker thread) on the server's loop."""
    if outgoing:
        from asgiref.sync import async_to_sync

        async_to_sync(send)(server, outgoing)
