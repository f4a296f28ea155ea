"""Node leases: which processes of a cluster are alive, and ending what a dead one held.

Every process of a cluster (Daphne node or sipworker) renews its `NodeLease` every
SIP_NODE_HEARTBEAT seconds for SIP_NODE_LEASE seconds. A process that dies without
closing its connections (kill -9, a lost host) leaves WebSocket flows behind: the
registrations and subscriptions bound to them can never be reached again. The next live
process to renew finds the lease expired and ends them, as the closing of each
connection would have (`runtime._forget_connection`). WebSocket registrations and
RFC 5626 TCP flows are removed. Subscriptions on WebSocket flows end, and the watcher-info
subscribers of their presentities hear of it. The lease row goes last. The row is locked
with SKIP LOCKED, so exactly one process reaps each dead node. UDP and plain TCP bindings
do not depend on the process: any worker reaches them, so they stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Q

from ..models import ActiveWatcher, NodeLease, Registration
from . import notify, ordering, watchers

WEBSOCKET = ("ws", "wss")
_ON_WEBSOCKET = Q(flow__startswith="ws|") | Q(flow__startswith="wss|")


@dataclass(frozen=True)
class Renewal:
    """What a renewal learns: the tags of the live nodes; whether this node is the oldest
    live worker (it runs the once-per-cluster periodic jobs); whether its lease had been
    taken for dead (`lost`: what it held is gone); the NOTIFYs its reaping made."""

    tags: frozenset[str]
    leader: bool
    lost: bool
    outgoing: list


def renew(
    server,
    node: str,
    tag: str,
    kind: str,
    lease: float,
    *,
    reaping: bool = True,
    orphans: bool = False,
    first: bool = False,
) -> Renewal:
    """Renew this node's lease and, with `reaping`, end what dead nodes held (with
    `orphans`, also what nodes without a lease row held)."""
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=lease)
    _, created = NodeLease.objects.update_or_create(
        node=node, defaults={"tag": tag, "kind": kind, "renewed": now, "expires": expires}
    )
    outgoing = []
    if reaping:
        outgoing = reap(server, now)
        if orphans:
            outgoing += reap_orphans(server, now - timedelta(seconds=lease))
    live = list(NodeLease.objects.filter(expires__gt=now).values_list("node", "tag", "kind"))
    workers = [row for row in live if row[2] == "worker"]
    leader = bool(workers) and workers[0][0] == node  # ordered by start time
    return Renewal(frozenset(row[1] for row in live), leader, created and not first, outgoing)


def release(node: str) -> None:
    """A node stopping: its lease ends now, so that what it held is reaped at once."""
    NodeLease.objects.filter(node=node).update(expires=datetime.now(UTC))


def reap(server, now: datetime | None = None) -> list[notify.Outgoing]:
    """End what the nodes whose lease expired held; exactly once over the cluster."""
    now = now or datetime.now(UTC)
    if not NodeLease.objects.filter(expires__lte=now).exists():
        return []
    with transaction.atomic():
        dead = list(
            NodeLease.objects.select_for_update(skip_locked=True)
            .filter(expires__lte=now)
            .values_list("node", flat=True)
        )
        if not dead:
            return []
        outgoing = forget_nodes(server, dead)
        NodeLease.objects.filter(node__in=dead).delete()
    return outgoing


def reap_orphans(server, before: datetime) -> list[notify.Outgoing]:
    """WebSocket flows of nodes with no lease row, untouched since `before`."""
    known = NodeLease.objects.values_list("node", flat=True)
    registrations = Registration.objects.filter(transport__in=WEBSOCKET, updated__lt=before)
    subscriptions = ActiveWatcher.objects.filter(_ON_WEBSOCKET, updated__lt=before)
    nodes = set(registrations.exclude(node__in=known).values_list("node", flat=True))
    nodes |= set(subscriptions.exclude(node__in=known).values_list("node", flat=True))
    if not nodes:
        return []
    with transaction.atomic():
        return forget_nodes(server, sorted(nodes), before)


def forget_nodes(server, nodes: list[str], before: datetime | None = None) -> list:
    """Inside a transaction: drop the connection-bound state of these nodes."""
    bound = Registration.objects.filter(node__in=nodes)
    subscriptions = ActiveWatcher.objects.filter(_ON_WEBSOCKET, node__in=nodes)
    if before is not None:
        bound, subscriptions = (
            bound.filter(updated__lt=before),
            subscriptions.filter(updated__lt=before),
        )
    bound.filter(Q(transport__in=WEBSOCKET) | Q(transport="tcp", reg_id__isnull=False)).delete()
    ordering.lock_presentities(subscriptions.values_list("presentity_uri", flat=True))
    dead = list(subscriptions)
    if not dead:
        return []
    ActiveWatcher.objects.filter(pk__in=[w.pk for w in dead]).delete()
    return watchers.report(server, [watchers.ended(w, "timeout") for w in dead])
