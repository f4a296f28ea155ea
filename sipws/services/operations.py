"""What an admin runs on a live server: Kamailio's presence RPC commands, as `do_*` actions.

Each action does its database work in one transaction and returns an `Outcome`: a summary
for the caller to show and the NOTIFYs for it to send after the commit (the REST API and
Django admin from their worker thread with `notify.send_from_sync`, the control socket on
the event loop). The queries behind the list and show commands live here too, so the
REST API and `manage.py presence` answer alike.

| Kamailio RPC                          | here                      |
| ------------------------------------- | ------------------------- |
| presence.cleanup                      | do_cleanup                |
| presence.refreshWatchers uri event 1  | do_refresh                |
| presence.updateWatchers uri event     | do_reevaluate             |
| presence.presentity_list / _show      | presentity_list / _detail |
| presence.watcher_list                 | subscription_list         |
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet

from ..event_packages import base as packages
from ..models import ActiveWatcher, Presentity, Registration, SipAccount, Watcher
from . import authorization, expiry, notify, ordering, watchers
from .dbthread import in_db_thread
from .subscribe import current_state, watchers_of


class OperationError(Exception):
    """An action or query that cannot be done; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Outcome:
    summary: dict
    outgoing: list[notify.Outgoing] = field(default_factory=list)


def do_terminate(server, subscription_id: int) -> Outcome:
    """End one subscription: the watcher gets `terminated;reason=deactivated` (RFC 6665
    §4.2.2: it may subscribe again at once) and watcher-info subscribers hear of it."""
    presentity = ActiveWatcher.objects.filter(pk=subscription_id).values_list(
        "presentity_uri", flat=True
    )
    with transaction.atomic():
        ordering.lock_presentities(presentity)
        subscription = ActiveWatcher.objects.select_for_update().filter(pk=subscription_id).first()
        if subscription is None:
            raise OperationError(f"no subscription {subscription_id}", 404)
        outgoing = notify.prepare(server, [subscription], None, reason="deactivated")
        ActiveWatcher.objects.filter(pk=subscription_id).delete()
        outgoing += watchers.report(server, [watchers.ended(subscription, "deactivated")])
    return Outcome({"terminated": subscription_id, "notified": len(outgoing)}, outgoing)


def do_refresh(server, presentity: str, event: str = "presence") -> Outcome:
    """NOTIFY every watcher of the presentity with its current state (refreshWatchers)."""
    package, uri = event_package(event), presentity_uri(presentity)
    _check_known(uri)
    with transaction.atomic():
        ordering.lock_presentities([uri])
        state = current_state(package, uri)
        outgoing = notify.prepare(server, _live_watchers(uri, package.name), state)
    return Outcome({"presentity": uri, "event": package.name, "notified": len(outgoing)}, outgoing)


def do_reevaluate(server, presentity: str, event: str = "presence") -> Outcome:
    """Decide every watcher of the presentity again from its rules (updateWatchers), as a
    rules change over XCAP does: for rules written to the database by other means."""
    package, uri = event_package(event), presentity_uri(presentity)
    _check_known(uri)
    with transaction.atomic():
        before = _statuses(uri, package.name)
        outgoing = authorization.reevaluate(server, uri, package.name)
        after = _statuses(uri, package.name)
    changes = [
        {"watcher": watcher, "before": status, "after": after.get(watcher, "terminated")}
        for watcher, status in sorted(before.items())
        if after.get(watcher, "terminated") != status
    ]
    summary = {"presentity": uri, "event": package.name, "notified": len(outgoing)}
    return Outcome({**summary, "changes": changes}, outgoing)


def _live_watchers(uri: str, event: str) -> list[ActiveWatcher]:
    """Subscriptions not terminated nor expired (an expired one waits for the cleanup)."""
    now = datetime.now(UTC)
    return [watcher for watcher in watchers_of(uri, event) if watcher.expires > now]


def _statuses(uri: str, event: str) -> dict[str, str]:
    rows = ActiveWatcher.objects.filter(presentity_uri=uri, event=event)
    return dict(rows.values_list("watcher_uri", "status"))


def do_cleanup(server, now: datetime | None = None) -> Outcome:
    """Expire now what is due (presence.cleanup), instead of at the next timer sweep."""
    now = now or datetime.now(UTC)
    with transaction.atomic():
        summary = {
            "publications": Presentity.objects.filter(expires__lte=now).count(),
            "subscriptions": ActiveWatcher.objects.filter(expires__lte=now).count(),
            "registrations": Registration.objects.filter(expires__lte=now).count(),
        }
        outgoing = expiry.expire_now(server, now)
    return Outcome({**summary, "notified": len(outgoing)}, outgoing)


# The actions by name, as the control socket and `manage.py presence` call them; other
# apps add theirs (xcapapi: `xcaprefresh`, a coroutine function, for the control socket only).
ACTIONS = {
    "terminate": do_terminate,
    "refresh": do_refresh,
    "reevaluate": do_reevaluate,
    "cleanup": do_cleanup,
}


def run(server, action: str, **arguments) -> dict:
    """Do an action from synchronous code in the server process and send its NOTIFYs."""
    outcome = ACTIONS[action](server, **arguments)
    notify.send_from_sync(server, outcome.outgoing)
    return outcome.summary


async def perform(server, action: str, arguments: dict) -> dict:
    """Do an action on the event loop (a control-socket request) and send its NOTIFYs."""
    do = ACTIONS.get(action)
    if do is None:
        raise OperationError(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    try:
        inspect.signature(do).bind(server, **arguments)
    except TypeError as error:
        raise OperationError(f"{action}: {error}") from None
    if inspect.iscoroutinefunction(do):  # an action that waits for I/O other than the DB
        outcome = await do(server, **arguments)
    else:
        outcome = await in_db_thread(do)(server, **arguments)
    await notify.send(server, outcome.outgoing)
    return outcome.summary


# Queries. URI filters take `*` as a wildcard (Kamailio's presentity_show does too).


def presentity_list(uri: str | None = None, event: str | None = None) -> QuerySet:
    """One row per presentity and event: how many publications, until when, how recent."""
    rows = Presentity.objects.all()
    if uri:
        rows = rows.filter(uri_filter("uri", uri))
    if event:
        rows = rows.filter(event=event)
    return (
        rows.values("uri", "event")
        .annotate(publications=Count("id"), expires=Max("expires"), updated=Max("received_time"))
        .order_by("uri", "event")
    )


def presentity_detail(presentity: str, event: str = "presence") -> dict:
    """One presentity's publications of one event and the state its watchers are sent."""
    package, uri = event_package(event), presentity_uri(presentity)
    _check_known(uri)
    state = current_state(package, uri)
    return {
        "uri": uri,
        "event": package.name,
        "content_type": package.content_types[0],
        "state": state.decode("utf-8", "replace") if state is not None else None,
        "publications": Presentity.objects.filter(uri=uri, event=package.name),
        "subscriptions": len(_live_watchers(uri, package.name)),
    }


def subscription_list(
    presentity: str | None = None,
    watcher: str | None = None,
    event: str | None = None,
    status: str | None = None,
) -> QuerySet:
    return _filtered(ActiveWatcher.objects.all(), presentity, watcher, event, status)


def watcher_list(
    presentity: str | None = None,
    watcher: str | None = None,
    event: str | None = None,
    status: str | None = None,
) -> QuerySet:
    return _filtered(Watcher.objects.all(), presentity, watcher, event, status)


def _filtered(rows: QuerySet, presentity, watcher, event, status) -> QuerySet:
    if presentity:
        rows = rows.filter(uri_filter("presentity_uri", presentity))
    if watcher:
        rows = rows.filter(uri_filter("watcher_uri", watcher))
    if event:
        rows = rows.filter(event=event)
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("presentity_uri", "event", "watcher_uri", "id")


def uri_filter(column: str, pattern: str) -> Q:
    """`sip:alice@example.com`, `alice@example.com`, or with `*`: `*@example.com`."""
    if "*" not in pattern:
        return Q(**{column: presentity_uri(pattern)})
    if not pattern.startswith(("sip:", "sips:", "*")):
        pattern = "sip:" + pattern
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return Q(**{f"{column}__iregex": regex})


def presentity_uri(text: str) -> str:
    """`alice@example.com` or `sip:alice@Example.COM` as stored: `sip:alice@example.com`."""
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    if not colon or scheme.lower() not in ("sip", "sips"):
        scheme, rest = "sip", text
    user, at, host = rest.rpartition("@")
    if not at or not user or not host or any(c in rest for c in " <>;?"):
        raise OperationError(f"not a SIP address: {text!r}")
    return f"{scheme.lower()}:{user}@{host.lower()}"


def event_package(event: str) -> packages.EventPackage:
    package = packages.get(event or "presence")
    if package is None:
        known = ", ".join(packages.names())
        raise OperationError(f"unknown event package {event!r} (known: {known})")
    return package


def _check_known(uri: str) -> None:
    """404 for an address that is no account and has no state at all."""
    username, _, domain = uri.partition(":")[2].rpartition("@")
    if SipAccount.objects.filter(username=username, domain=domain).exists():
        return
    if Presentity.objects.filter(uri=uri).exists():
        return
    if ActiveWatcher.objects.filter(presentity_uri=uri).exists():
        return
    raise OperationError(f"no presentity {uri}", 404)
