"""The Watcher table: every subscription attempt and its authorization, and who hears of it.

Engine code reports each change of a watcher's status here (a new subscription, an
approval, a rejection, an expiry); listeners such as presence.winfo turn the changes
into NOTIFYs of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..models import ActiveWatcher, SubscriptionStatus, Watcher
from .rows import Table

_watchers = Table(Watcher)


@dataclass(frozen=True)
class WatcherChange:
    """`status` as RFC 3858 shows it (pending, active, waiting, terminated) and `reason`
    its event attribute (subscribe, approved, rejected, timeout, deactivated, ...)."""

    presentity: str
    event: str
    watcher: str
    display_name: str
    status: str
    reason: str
    decision: str  # what the Watcher table keeps: the authorization, pending/active/terminated


Listener = Callable[[object, list[WatcherChange]], list]
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def report(server, changes: list[WatcherChange]) -> list:
    """Store the changes in the Watcher table; return the NOTIFYs listeners want sent."""
    # One upsert for all changes, instead of a read and a write for each.
    _watchers.upsert(
        [_row(change) for change in changes],
        unique=["presentity_uri", "watcher_uri", "event"],
        update=["status", "reason", "watcher_display", "updated"],
    )
    outgoing = []
    for listener in _listeners:
        outgoing += listener(server, changes)
    return outgoing


def _row(change: WatcherChange) -> Watcher:
    return _watchers.new(
        presentity_uri=change.presentity,
        watcher_uri=change.watcher,
        event=change.event,
        status=change.decision,
        reason=change.reason,
        watcher_display=change.display_name,
    )  # `updated` is stamped at the upsert (auto_now)


def started(subscription: ActiveWatcher, reason: str = "subscribe") -> WatcherChange:
    return WatcherChange(
        subscription.presentity_uri,
        subscription.event,
        subscription.watcher_uri,
        subscription.watcher_display,
        subscription.status,
        reason,
        subscription.status,
    )


def ended(subscription: ActiveWatcher, reason: str) -> WatcherChange:
    """The subscription is gone; the authorization it had stays for its next one.

    A pending watcher whose subscription ends is `waiting` (RFC 3857 §3.4).
    """
    rejected = reason == "rejected"
    pending = subscription.status == SubscriptionStatus.PENDING and not rejected
    return WatcherChange(
        subscription.presentity_uri,
        subscription.event,
        subscription.watcher_uri,
        subscription.watcher_display,
        "waiting" if pending else "terminated",
        reason,
        SubscriptionStatus.TERMINATED if rejected else subscription.status,
    )
