"""Re-deciding existing subscriptions when a presentity's rules change (RFC 5025 §3.1).

Every watcher of the presentity is decided again; a pending watcher now allowed gets the
full state, an allowed one now blocked gets `terminated;reason=rejected`, and every
active watcher gets its (possibly re-cut) view. Watcher-info subscribers hear of it.
"""

from __future__ import annotations

from django.db import transaction

from ..event_packages import base as packages
from ..models import ActiveWatcher, SubscriptionStatus, Watcher
from . import notify, ordering, policy, watchers
from .subscribe import current_state

TERMINATED = SubscriptionStatus.TERMINATED


def reevaluate(server, presentity: str, event: str = "presence") -> list[notify.Outgoing]:
    package = packages.get(event)
    if package is None:
        return []
    with transaction.atomic():
        ordering.lock_presentities([presentity])
        subscriptions = list(
            ActiveWatcher.objects.select_for_update()
            .filter(presentity_uri=presentity, event=event)
            .exclude(status=TERMINATED)
        )
        changes, keep, rejected = [], [], []
        for subscription in subscriptions:
            decision = _decision(event, subscription.watcher_uri, presentity)
            if decision.status == TERMINATED:
                subscription.reason = decision.reason or "rejected"
                rejected.append(subscription)
                changes.append(watchers.ended(subscription, subscription.reason))
                continue
            if (decision.status, decision.reason) != (subscription.status, subscription.reason):
                reason = _winfo_event(subscription.status, decision.status)
                subscription.status, subscription.reason = decision.status, decision.reason
                subscription.save(update_fields=["status", "reason"])
                changes.append(watchers.started(subscription, reason))
            elif subscription.status != SubscriptionStatus.ACTIVE:
                continue  # still pending: nothing new to tell it
            keep.append(subscription)
        outgoing = []
        if keep:  # the state is composed only when someone is told it
            outgoing = notify.prepare(server, keep, current_state(package, presentity))
        for subscription in rejected:
            outgoing += notify.prepare(server, [subscription], None, reason=subscription.reason)
        ActiveWatcher.objects.filter(pk__in=[s.pk for s in rejected]).delete()
        changes += _redecide_waiting(event, presentity, {s.watcher_uri for s in subscriptions})
        outgoing += watchers.report(server, changes)
    return outgoing


def _decision(event: str, watcher: str, presentity: str) -> policy.Decision:
    decision = policy.decide(event, watcher, presentity)
    if decision.status == policy.FORBIDDEN.status:
        return policy.Decision(TERMINATED, "rejected")
    return decision


def _winfo_event(before: str, after: str) -> str:
    """RFC 3858 event for a status change of a live subscription."""
    if after == SubscriptionStatus.ACTIVE and before == SubscriptionStatus.PENDING:
        return "approved"
    if after == SubscriptionStatus.PENDING:
        return "probation"
    return "subscribe"


def _redecide_waiting(event: str, presentity: str, live: set[str]) -> list:
    """Watchers with no subscription keep the new decision for when they come back.

    RFC 3857 §3.4: a waiting watcher that is approved or rejected moves to terminated,
    with the event saying which; watcher-info subscribers are told.
    """
    changes = []
    for row in Watcher.objects.filter(presentity_uri=presentity, event=event).exclude(
        watcher_uri__in=live
    ):
        decision = _decision(event, row.watcher_uri, presentity)
        if decision.status == row.status:
            continue
        reason = {SubscriptionStatus.ACTIVE: "approved", TERMINATED: "rejected"}.get(
            decision.status, "subscribe"
        )
        shown = "waiting" if decision.status == SubscriptionStatus.PENDING else "terminated"
        changes.append(
            watchers.WatcherChange(
                presentity,
                event,
                row.watcher_uri,
                row.watcher_display,
                shown,
                reason,
                decision.status,
            )
        )
    return changes
