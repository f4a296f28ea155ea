"""The Watcher table: every subscription attempt and its authorization, and who hears of it.

Engine code reports each change of a watcher's status here (a new subscription, an
approval, a rejection, an expiry); listeners such as presence.winfo turn the changes
into NOTIFYs of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

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
    if changes:
        now = datetime.now(UTC)
        rows = [
            (c.presentity, c.watcher, c.display_name, c.event, str(c.decision), c.reason, now, now)
            for c in changes
        ]
        _watchers.upsert(_FIELDS, rows, _UNIQUE, _UPDATED)
    outgoing = []
    for listener in _listeners:
        outgoing += listener(server, changes)
    return outgoing


_FIELDS = (
    "presentity_uri",
    "watcher_uri",
    "watcher_display",
    "event",
    "status",
    "reason",
    "inserted_time",
    "updated",
)
_UNIQUE = ("presentity_uri", "watcher_uri", "event")
_UPDATED = ("status", "reason", "watcher_display", "updated")


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
