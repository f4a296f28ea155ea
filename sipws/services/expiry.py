"""Expiry of publications, subscriptions and registrations (RFC 3903 §6, RFC 6665 §4.2.2).

Watchers of a presentity whose publication expired get the new state; a subscription
that expired gets its final NOTIFY with `terminated;reason=timeout`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from channels.db import database_sync_to_async
from django.db import transaction

from ..event_packages import base as packages
from ..models import ActiveWatcher, Presentity, Registration
from . import notify, watchers
from .subscribe import current_state, watchers_of


async def expire(server) -> int:
    outgoing = await database_sync_to_async(expire_now)(server)
    await notify.send(server, outgoing)
    return len(outgoing)


def expire_now(server, now: datetime | None = None) -> list[notify.Outgoing]:
    """Expire everything due at `now` (tests pass a time; the timer loop passes none)."""
    now = now or datetime.now(UTC)
    outgoing: list[notify.Outgoing] = []
    with transaction.atomic():
        Registration.objects.filter(expires__lte=now).delete()
        expired = Presentity.objects.filter(expires__lte=now)
        changed = set(expired.values_list("uri", "event"))
        expired.delete()
        for uri, event in sorted(changed):
            package = packages.get(event)
            if package is not None:
                state = current_state(package, uri, now)
                # A subscription ending in this sweep gets only its final NOTIFY.
                live = [w for w in watchers_of(uri, event) if w.expires > now]
                outgoing += notify.prepare(server, live, state, now=now)
        ended = list(ActiveWatcher.objects.filter(expires__lte=now))
        outgoing += notify.prepare(server, ended, None, reason="timeout", now=now)
        ActiveWatcher.objects.filter(pk__in=[w.pk for w in ended]).delete()
        outgoing += watchers.report(server, [watchers.ended(w, "timeout") for w in ended])
    return outgoing
