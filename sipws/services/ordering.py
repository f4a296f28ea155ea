"""One presentity's changes and their NOTIFYs, in order, in one process and across nodes.

Two locks, both keyed by the presentity's address:

- In the database transaction, `lock_presentities()` takes a PostgreSQL advisory lock
  before the change reads any state. Transactions that change one presentity therefore
  commit one after the other. Each NOTIFY carries the state of every commit before it,
  and the local CSeqs it bumps follow the commit order. SQLite needs no lock: its
  IMMEDIATE transactions take the write lock at BEGIN, and the embedded mode runs as one
  process.
- Around the change and the hand-off of its NOTIFYs, `presentity_lock` takes an asyncio
  lock in the process and, in a cluster, a lease in Redis. It is held from before the
  transaction until every NOTIFY has been handed on: to a socket, to a WebSocket of this
  process, or to the channel of the process that owns the flow. So the NOTIFYs of one
  change enter each channel before those of the next change, whichever node makes it.
  The owner delivers its channel in order.

If the Redis lease runs out (after LEASE seconds), or Redis cannot be reached, the
database lock still gives the right state with each CSeq. Only the send order is then
best effort, and a watcher refuses a late, lower CSeq (RFC 3261 §12.2.2) and keeps the
newer state.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from django.db import connection

from .dbthread import batch_connection
from .logonce import log_once
from .settingcache import setting

log = logging.getLogger("sipws.ordering")
# Advisory lock keys are (namespace, key) pairs of int4; other users of the database keep
# out of this namespace ("SIPW").
NAMESPACE = 0x53495057
SWEEP_KEY = 1  # namespace NAMESPACE + 1: one expiry sweep at a time (services/expiry)
LEASE = 10.0  # seconds a Redis lease lives if its holder dies
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def advisory_key(uri: str) -> int:
    digest = hashlib.blake2b(uri.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_presentities(uris: Iterable[str]) -> None:
    """Inside a transaction, before reading state: lock these presentities until commit.

    Keys are locked in ascending order, so two transactions that lock several
    presentities cannot deadlock on each other.
    """
    if batch_connection() is not None:  # an engine batch on SQLite: its write lock is held
        return
    if connection.vendor != "postgresql":
        return
    keys = sorted({advisory_key(uri) for uri in uris})
    if not keys:
        return
    if not connection.in_atomic_block:
        raise RuntimeError("lock_presentities() outside a transaction locks nothing")
    with connection.cursor() as cursor:
        if len(keys) == 1:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [NAMESPACE, keys[0]])
        else:
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(%s, k)) "
                "FROM (SELECT unnest(%s::int[]) AS k ORDER BY k) AS ordered",
                [NAMESPACE, keys],
            )


def try_lock_sweep() -> bool:
    """Inside a transaction: whether this process may run the expiry sweep now."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [NAMESPACE + 1, SWEEP_KEY])
        return bool(cursor.fetchone()[0])


class _ClusterLeases:
    """Redis leases (SET NX PX): one holder of a presentity's lease in the whole cluster."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, object]] = {}

    def _client(self):
        import redis.asyncio

        loop = asyncio.get_running_loop()
        known = self._clients.get(id(loop))
        if known is None or known[0] is not loop:
            # A client belongs to one event loop (the `presence` command runs its own).
            for key, (other, _) in list(self._clients.items()):
                if other.is_closed():
                    del self._clients[key]
            client = redis.asyncio.Redis.from_url(
                self.url, socket_timeout=2, socket_connect_timeout=2
            )
            known = self._clients[id(loop)] = (loop, client)
        return known[1]

    @staticmethod
    def _name(uri: str) -> str:
        return f"sipws:order:{uri}"

    async def acquire(self, uri: str) -> str | None:
        """Wait for the lease; its token, or None when Redis cannot be reached."""
        token = secrets.token_hex(8)
        delay = 0.001
        try:
            client = self._client()
            while not await client.set(self._name(uri), token, nx=True, px=int(LEASE * 1000)):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.02)
        except Exception as error:  # redis.RedisError, OSError: order is then best effort
            log_once(log, "redis-lease", "presentity lease in Redis unavailable: %r", error)
            return None
        return token

    async def try_acquire(self, uris: list[str]) -> dict[str, str | None]:
        """The leases among `uris` that are free now, in one round trip."""
        token = secrets.token_hex(8)
        try:
            pipe = self._client().pipeline(transaction=False)
            for uri in uris:
                pipe.set(self._name(uri), token, nx=True, px=int(LEASE * 1000))
            results = await pipe.execute()
        except Exception as error:
            log_once(log, "redis-lease", "presentity lease in Redis unavailable: %r", error)
            return dict.fromkeys(uris)
        return {uri: token for uri, ok in zip(uris, results, strict=True) if ok}

    async def release(self, held: dict[str, str | None]) -> None:
        held = {uri: token for uri, token in held.items() if token is not None}
        if not held:
            return
        try:
            client = self._client()
            pipe = client.pipeline(transaction=False)
            for uri, token in held.items():
                pipe.eval(_RELEASE, 1, self._name(uri), token)
            await pipe.execute()
        except Exception as error:
            log_once(log, "redis-release", "presentity lease not released: %r", error)


class Held:
    """Locks held on some presentities; `release()` once (it is idempotent)."""

    def __init__(self, owner: PresentityLocks, local: list[str], leases: dict) -> None:
        self.owner, self.local, self.leases = owner, local, leases

    @property
    def uris(self) -> list[str]:
        return list(self.local)

    async def release(self) -> None:
        local, self.local = self.local, []
        leases, self.leases = self.leases, {}
        try:
            if leases and self.owner.cluster is not None:
                await self.owner.cluster.release(leases)
        finally:
            for uri in local:
                self.owner._release_local(uri)

    def then(self, followup: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """A followup that runs `followup` and then releases these locks."""

        async def run() -> None:
            try:
                await followup()
            finally:
                await self.release()

        return run


class PresentityLocks:
    """One holder at a time per presentity in this process, first come first served,
    plus the cluster lease."""

    def __init__(self) -> None:
        # A presentity is held while it has an entry here: the turns of those waiting for
        # it, in order. (An asyncio.Lock made and dropped for nearly every request, as
        # most presentities see one change at a time, cost more than this.)
        self._queues: dict[str, deque[asyncio.Future]] = {}
        self._cluster: _ClusterLeases | None = None
        self._cluster_url: str | None = None

    @property
    def cluster(self) -> _ClusterLeases | None:
        url = setting("REDIS_URL") or None
        if url != self._cluster_url:  # settings differ in tests
            self._cluster_url = url
            self._cluster = _ClusterLeases(url) if url else None
        return self._cluster

    def __call__(self, uri: str) -> _Acquiring:
        """`async with presentity_lock(uri): ...`. Changes of every event package of a
        presentity are ordered together: presence.winfo reports presence's watchers."""
        return _Acquiring(self, uri)

    async def acquire(self, uri: str) -> Held:
        await self._acquire_local(uri)
        leases = {}
        cluster = self.cluster
        if cluster is not None:
            try:
                leases[uri] = await cluster.acquire(uri)
            except BaseException:
                self._release_local(uri)
                raise
        return Held(self, [uri], leases)

    async def _acquire_local(self, uri: str) -> None:
        queue = self._queues.get(uri)
        if queue is None:
            self._queues[uri] = deque()
            return
        turn = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():  # given the turn as it was cancelled
                self._release_local(uri)
            raise  # a cancelled turn stays queued: `_release_local` passes it by

    async def try_acquire(self, uris: Iterable[str]) -> Held:
        """The locks among `uris` that nobody holds or waits for now (the expiry sweep
        leaves the others to its next round)."""
        free = [uri for uri in sorted(set(uris)) if uri not in self._queues]
        for uri in free:
            self._queues[uri] = deque()
        held = Held(self, free, {})
        cluster = self.cluster
        if cluster is not None and free:
            leases = await cluster.try_acquire(free)
            for uri in free:
                if uri not in leases:
                    self._release_local(uri)
            held.local = [uri for uri in free if uri in leases]
            held.leases = leases
        return held

    def _release_local(self, uri: str) -> None:
        """Give the presentity to the first waiter still waiting, else free it."""
        queue = self._queues[uri]
        while queue:
            turn = queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        del self._queues[uri]


class _Acquiring:
    def __init__(self, owner: PresentityLocks, uri: str) -> None:
        self.owner, self.uri = owner, uri
        self.held: Held | None = None

    async def __aenter__(self) -> Held:
        self.held = await self.owner.acquire(self.uri)
        return self.held

    async def __aexit__(self, *exc) -> None:
        await self.held.release()


presentity_lock = PresentityLocks()


async def change(server, uri: str, work: Callable[[], Awaitable[tuple]]):
    """Run `work()` → (response, outgoing NOTIFYs) holding the presentity's locks.

    Returns the response, or (response, followup) for the dispatcher, whose followup
    sends the NOTIFYs after the response and then releases the locks.
    """
    from . import notify

    held = await presentity_lock.acquire(uri)
    try:
        response, outgoing = await work()
    except BaseException:
        await held.release()
        raise
    if not outgoing:
        await held.release()
        return response
    return response, held.then(lambda: notify.send(server, outgoing))
