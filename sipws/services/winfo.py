"""presence.winfo (RFC 3857): a presentity learns who watches it and who waits for approval.

The first NOTIFY of a subscription carries the full list of watchers, each later one
the watchers that changed (partial state), with a version counter per subscription.
Only the presentity itself may subscribe to its watcher information.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from ..event_packages.winfo import WatcherEntry, render, winfo
from ..models import ActiveWatcher, SubscriptionStatus, Watcher
from . import notify, policy, watchers
from .kept import KeptAnswers
from .notify import active_watchers

WATCHED = "presence"  # the package whose watchers winfo reports

# Whether a presentity has a winfo subscription (of any status), kept while none can have
# been added (services/kept): every presence SUBSCRIBE and unsubscribe asks, and few
# presentities are watched through winfo. Only a new winfo subscription turns a "no" into
# a "yes"; SUBSCRIBE inserts its row without a signal, then reports it here (`on_changes`).
_has_winfo = KeptAnswers("winfo-subscribed", ActiveWatcher)


def full_state(subscription: ActiveWatcher) -> bytes:
    now = datetime.now(UTC)
    live = _live_subscriptions(subscription.presentity_uri)
    rows = Watcher.objects.filter(presentity_uri=subscription.presentity_uri, event=WATCHED)
    entries = [_entry(row, live.get(row.watcher_uri), now) for row in rows]
    return render(
        subscription.presentity_uri, WATCHED, notify.next_version(subscription), "full", entries
    )


def on_changes(server, changes: list[watchers.WatcherChange]) -> list[notify.Outgoing]:
    """Partial-state NOTIFYs to the winfo subscribers of each presentity that changed."""
    by_presentity = defaultdict(list)
    for change in changes:
        if change.event == WATCHED:
            by_presentity[change.presentity].append(change)
        elif change.event == winfo.name:
            _has_winfo.forget()
    outgoing = []
    now = datetime.now(UTC)
    for presentity, changed in by_presentity.items():
        if not _has_winfo.get(presentity, lambda p=presentity: _winfo_subscribed(p)):
            continue
        subscribers = active_watchers.select(
            '"presentity_uri" = %s AND "event" = %s AND "status" = %s',
            [presentity, winfo.name, SubscriptionStatus.ACTIVE.value],
        )
        if not subscribers:
            continue
        entries = _changed_entries(presentity, changed, now)

        def partial(subscription, entries=entries):
            return render(
                subscription.presentity_uri,
                WATCHED,
                notify.next_version(subscription),
                "partial",
                entries,
            )

        outgoing += notify.prepare(server, subscribers, None, body_for=partial)
    return outgoing


def _winfo_subscribed(presentity: str) -> bool:
    where = '"presentity_uri" = %s AND "event" = %s'
    return active_watchers.count(where, [presentity, winfo.name]) > 0


def _changed_entries(presentity, changed, now) -> list[WatcherEntry]:
    rows = {
        row.watcher_uri: row
        for row in Watcher.objects.filter(
            presentity_uri=presentity,
            event=WATCHED,
            watcher_uri__in=[c.watcher for c in changed],
        )
    }
    live = _live_subscriptions(presentity)
    entries = []
    for change in changed:
        row = rows[change.watcher]
        entry = _entry(row, live.get(change.watcher), now)
        entries.append(
            WatcherEntry(
                entry.id,
                entry.uri,
                change.status,
                change.reason,
                entry.display_name,
                entry.expiration,
                entry.duration_subscribed,
            )
        )
    return entries


def _live_subscriptions(presentity: str) -> dict[str, ActiveWatcher]:
    rows = ActiveWatcher.objects.filter(presentity_uri=presentity, event=WATCHED).order_by(
        "created"
    )
    return {row.watcher_uri: row for row in rows}


def _entry(row: Watcher, live: ActiveWatcher | None, now: datetime) -> WatcherEntry:
    if live is not None:
        status = live.status
        expiration = max(0, round((live.expires - now).total_seconds()))
        duration = max(0, round((now - live.created).total_seconds()))
    else:
        status = "waiting" if row.status == SubscriptionStatus.PENDING else "terminated"
        expiration = duration = None
    return WatcherEntry(
        f"w{row.pk}",
        row.watcher_uri,
        status,
        row.reason or "subscribe",
        row.watcher_display,
        expiration,
        duration,
    )


def only_own(watcher: str, presentity: str) -> policy.Decision:
    return policy.ALLOW if watcher == presentity else policy.FORBIDDEN


def install() -> None:
    notify.state_providers[winfo.name] = full_state
    watchers.listen(on_changes)
    policy.register(winfo.name, only_own)
