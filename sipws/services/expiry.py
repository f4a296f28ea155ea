"""Expiry of publications, subscriptions and registrations (RFC 3903 §6, RFC 6665 §4.2.2).

Watchers of a presentity whose publication expired get the new state; a subscription
that expired gets its final NOTIFY with `terminated;reason=timeout`.

Exactly once, whatever the number of workers sweeping: a sweep runs in one transaction
that holds the sweep's advisory lock (another worker's sweep meanwhile skips its round)
and each presentity's lock, and it finds, deletes and notifies what is due under those
locks. A row that one sweep deleted is gone for the next. The presentities that a change
holds at that moment (services/ordering) wait for the next sweep, a second later.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..event_packages import base as packages
from ..models import ActiveWatcher, Presentity, Registration
from . import dbthread, notify, ordering, watchers
from .dbthread import in_db_thread
from .subscribe import current_state, watchers_of

BATCH = 500  # presentities per transaction


async def expire(server) -> int:
    now = datetime.now(UTC)
    due = await in_db_thread(due_presentities)(now, BATCH)
    held = await ordering.presentity_lock.try_acquire(due)
    try:
        outgoing = await in_db_thread(expire_now)(server, now, held.uris)
        await notify.send(server, outgoing)
    finally:
        await held.release()
    return len(outgoing)


def due_presentities(now: datetime, limit: int | None = None) -> list[str]:
    """Presentities with a publication or a subscription due at `now`."""
    publications = Presentity.objects.filter(expires__lte=now).values_list("uri", flat=True)
    subscriptions = ActiveWatcher.objects.filter(expires__lte=now).values_list(
        "presentity_uri", flat=True
    )
    if limit is not None:
        publications, subscriptions = publications[:limit], subscriptions[:limit]
    return sorted(set(publications) | set(subscriptions))


def expire_now(
    server, now: datetime | None = None, presentities: list[str] | None = None
) -> list[notify.Outgoing]:
    """Expire what is due at `now` (tests pass a time; the timer loop passes none), of
    `presentities` only, or of every presentity when None."""
    now = now or datetime.now(UTC)
    outgoing: list[notify.Outgoing] = []
    with dbthread.atomic():
        if not ordering.try_lock_sweep():
            return []  # another worker is sweeping: what is due is its
        Registration.objects.filter(expires__lte=now).delete()
        if presentities is None:
            presentities = due_presentities(now)
        for start in range(0, len(presentities), BATCH):
            outgoing += _expire(server, now, presentities[start : start + BATCH])
    return outgoing


def _expire(server, now: datetime, presentities: list[str]) -> list[notify.Outgoing]:
    ordering.lock_presentities(presentities)
    outgoing: list[notify.Outgoing] = []
    expired = Presentity.objects.filter(expires__lte=now, uri__in=presentities)
    changed = set(expired.values_list("uri", "event"))
    expired.delete()
    for uri, event in sorted(changed):
        package = packages.get(event)
        if package is not None:
            # A subscription ending in this sweep gets only its final NOTIFY.
            live = [w for w in watchers_of(uri, event) if w.expires > now]
            if live:
                state = current_state(package, uri, now)
                outgoing += notify.prepare(server, live, state, now=now)
    ended = list(ActiveWatcher.objects.filter(expires__lte=now, presentity_uri__in=presentities))
    outgoing += notify.prepare(server, ended, None, reason="timeout", now=now)
    ActiveWatcher.objects.filter(pk__in=[w.pk for w in ended]).delete()
    outgoing += watchers.report(server, [watchers.ended(w, "timeout") for w in ended])
    return outgoing
