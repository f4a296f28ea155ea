"""The Watcher table: every subscription attempt and its authorization, and who hears of it.

Engine code reports each change of a watcher's status here (a new subscription, an
approval, a rejection, an expiry); listeners such as presence.winfo turn the changes
into NOTIFYs of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

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
    # One upsert for all changes, instead of a read and a write for each; its values
    # come straight from the changes (a model instance per row cost more than the SQL).
    if changes:
        now = datetime.now(UTC)
        values = []
        for change in changes:
            values += (change.presentity, change.watcher, change.display_name, change.event)
            values += (str(change.decision), change.reason, now, now)
        _watchers.execute(_upsert(len(changes)), values)
    outgoing = []
    for listener in _listeners:
        outgoing += listener(server, changes)
    return outgoing


_COLUMNS = (
    "presentity_uri",
    "watcher_uri",
    "watcher_display",
    "event",
    "status",
    "reason",
    "inserted_time",
    "updated",
)
_UPDATED = ("status", "reason", "watcher_display", "updated")


@lru_cache(maxsize=8)
def _upsert(rows: int) -> str:
    """INSERT of `rows` watchers, or UPDATE of the authorization where the watcher is
    known; the ON CONFLICT clause is the same in SQLite and PostgreSQL."""
    quoted = _watchers.quoted
    row = f"({', '.join(['%s'] * len(_COLUMNS))})"
    unique = ", ".join(quoted[name] for name in ("presentity_uri", "watcher_uri", "event"))
    assignments = ", ".join(f"{quoted[name]} = EXCLUDED.{quoted[name]}" for name in _UPDATED)
    return (
        f"INSERT INTO {_watchers.name} ({', '.join(quoted[name] for name in _COLUMNS)}) "
        f"VALUES {', '.join([row] * rows)} ON CONFLICT ({unique}) DO UPDATE SET {assignments}"
    )


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
