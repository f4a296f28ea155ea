"""Where the SIP engine's database work runs: inline on SQLite, else on one thread.

Every engine job is a short synchronous function (a request's transaction), awaited
through `in_db_thread`.

- On SQLite (the embedded default) a job runs inline on the event loop's thread. SQLite
  is a library in this process: an indexed statement takes microseconds, and a hop to
  another thread cost more than the work. Handing each request's objects to a thread on
  another core and back, and the two threads' turns on the GIL, made a PUBLISH about
  20 % dearer (a closed-loop sipp PUBLISH lifecycle, `-l 30`: 141-162 calls/s threaded,
  188-204 inline). So that a long admin action or a VACUUM holding SQLite's write lock
  does not stop the loop, BEGIN does not wait for the lock: a batch that finds it held
  tries again a little later (`_Batch._wait_for_lock`), up to the database's timeout.
- On PostgreSQL a statement is a network round trip, which must not stall the loop: jobs
  run on one thread (`_executor`), one cheap executor hop per request. channels'
  `database_sync_to_async` cost about 90 µs a call (context handling, an executor lookup,
  and `close_old_connections` before and after, which with CONN_HEALTH_CHECKS adds a
  `SELECT 1` round trip to every request).

On SQLite the jobs of one turn of the loop also share one transaction (`_Batch`, a group
commit). A job is queued, and once the tasks ready this turn have run, the queued jobs
run back to back between one BEGIN IMMEDIATE and one COMMIT, each in a savepoint of its
own, so a failing job undoes only its own writes (a turn's only job needs none: the
transaction is rolled back instead). Every caller gets its job's result
after the COMMIT, so nothing is acknowledged before it is stored, as before; but a loop
that falls behind (the UDP socket hands it up to 32 datagrams a turn) pays for one
commit per turn instead of one per request. The write lock is held only while the jobs
run: the parsing and sending around them happen outside it, so another connection (the
admin's, `manage.py sipuser`) still finds gaps to write in.

Either way a job runs in the caller's context (log context, policy batch) on one
persistent connection, and connections are checked for age and health once a second.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    OperationalError,
    close_old_connections,
    connections,
    transaction,
)
from django.db.backends.base.base import BaseDatabaseWrapper

from .settingcache import setting

P = ParamSpec("P")
R = TypeVar("R")

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sip-db")
HOUSEKEEPING_INTERVAL = 1.0  # seconds between connection age and health checks
_last_housekeeping = 0.0
LOCK_PAUSES = (0.001, 0.05)  # seconds between tries for the write lock: first, longest


def in_db_thread(function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`function` as a coroutine function that runs it where engine database work runs
    (see the module's docstring), in the caller's context."""

    @functools.wraps(function)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        if runs_inline():
            return await _Batch.queue(function, args, kwargs)
        job = functools.partial(contextvars.copy_context().run, _run, function, args, kwargs)
        return await asyncio.get_running_loop().run_in_executor(_executor, job)

    return call


def runs_inline() -> bool:
    """Whether engine jobs run on the event loop's thread (SQLite) or on `_executor`."""
    return setting("DATABASES")[DEFAULT_DB_ALIAS]["ENGINE"].endswith("sqlite3")


def current_batch() -> _Batch | None:
    """The SQLite transaction whose jobs are running on this thread, if any. While they
    run this process holds the write lock, so no other connection can commit."""
    return _here.batch


@dataclass(slots=True)
class _Job:
    function: Callable
    args: tuple
    kwargs: dict
    context: contextvars.Context
    done: asyncio.Future


class _Batch:
    """The engine jobs queued in one turn of the event loop, and their one transaction."""

    queued: _Batch | None = None  # taking jobs until the end of this turn

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.jobs: list[_Job] = []
        self.waiting_since: float | None = None  # for the write lock, held elsewhere
        self.pause = LOCK_PAUSES[0]
        loop.call_soon(self.run)  # after the tasks ready this turn, whose jobs join it

    @classmethod
    def queue(cls, function, args, kwargs) -> asyncio.Future:
        """Queue a job; the future has its result (or its error) once it is committed."""
        loop = asyncio.get_running_loop()
        batch = cls.queued
        if batch is None or batch.loop is not loop:  # (a loop of its own per test run)
            batch = cls.queued = cls(loop)
        done = loop.create_future()
        batch.jobs.append(_Job(function, args, kwargs, contextvars.copy_context(), done))
        return done

    def run(self) -> None:
        try:
            began = _synchronously(_begin)
            if began is None:  # another connection holds the write lock
                self._wait_for_lock()
                return
            self._close()
            outcomes = _synchronously(self._transaction, *began)
        except Exception as error:  # BEGIN or COMMIT failed: nothing of this batch is stored
            self._close()
            _synchronously(close_old_connections)  # an unusable connection is dropped
            outcomes = [_Failed(error)] * len(self.jobs)
        self._answer(outcomes)

    def _close(self) -> None:
        """Take no more jobs: the next ones start a batch of their own."""
        if _Batch.queued is self:
            _Batch.queued = None

    def _wait_for_lock(self) -> None:
        """Try again soon, the loop serving everything else meanwhile (jobs queued in
        the meantime join this batch); give up after SQLite's own busy timeout."""
        now = time.monotonic()
        self.waiting_since = self.waiting_since or now
        if now - self.waiting_since < _busy_timeout():
            self.loop.call_later(self.pause, self.run)
            self.pause = min(2 * self.pause, LOCK_PAUSES[1])
            return
        self._close()
        self._answer([_Failed(OperationalError("database is locked"))] * len(self.jobs))

    def _transaction(self, db, began: transaction.Atomic) -> list:
        _here.batch, _here.db = self, db
        try:
            if len(self.jobs) == 1:  # the transaction undoes it if need be: no savepoint
                outcomes = [self.jobs[0].context.run(_alone, db, self.jobs[0])]
            else:
                outcomes = [job.context.run(_in_savepoint, db, job) for job in self.jobs]
        except BaseException as error:
            began.__exit__(type(error), error, error.__traceback__)  # ROLLBACK
            raise
        else:
            failed = outcomes[0].error if isinstance(outcomes[0], _Failed) else None
            if len(self.jobs) == 1 and failed is not None:
                began.__exit__(type(failed), failed, failed.__traceback__)  # ROLLBACK
            else:
                began.__exit__(None, None, None)  # COMMIT
            return outcomes
        finally:
            _here.batch, _here.db = None, None

    def _answer(self, outcomes: list) -> None:
        for job, outcome in zip(self.jobs, outcomes, strict=True):
            if job.done.cancelled():  # the caller left; its job ran all the same
                continue
            if isinstance(outcome, _Failed):
                job.done.set_exception(outcome.error)
            else:
                job.done.set_result(outcome)


def _begin() -> tuple[BaseDatabaseWrapper, transaction.Atomic] | None:
    """BEGIN IMMEDIATE without waiting: the connection and its open transaction, or None
    while another connection holds the write lock. SQLite's busy handler would sleep on
    the loop's thread, and stop HTTP, WebSocket and SIP alike."""
    _housekeeping()  # never inside a transaction: it may close the connection
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    _prepare_loop_connection(db.connection)
    began = transaction.atomic(using=DEFAULT_DB_ALIAS)
    try:
        began.__enter__()
    except OperationalError as error:
        if "database is locked" not in str(error):
            raise
        return None
    return db, began


_prepared: list = [None]  # the loop's SQLite connection, once prepared


def _prepare_loop_connection(raw) -> None:
    """Set once per connection what the loop's connection must never do on the loop:

    - wait for the write lock: a busy timeout of 0. Only BEGIN can meet the lock held
      elsewhere: every other statement of this connection runs inside the transaction
      it opened (WAL readers take no lock);
    - checkpoint the write-ahead log, which writes and syncs the database file: a
      worker thread does it (services/checkpoint).
    """
    if _prepared[0] is not raw:
        raw.execute("PRAGMA busy_timeout = 0")
        raw.execute("PRAGMA wal_autocheckpoint = 0")
        _prepared[0] = raw


@functools.cache
def _busy_timeout() -> float:
    """Seconds a connection waits for the write lock (the `timeout` option, sqlite3's 5
    by default)."""
    return float(settings.DATABASES[DEFAULT_DB_ALIAS].get("OPTIONS", {}).get("timeout", 5.0))


@dataclass(slots=True)
class _Failed:
    """A job that raised: its writes are undone, its error goes to its caller."""

    error: Exception


def _alone(db, job: _Job):
    """Run one job: its result, or `_Failed`. The batch's only job needs nothing more: if
    it raises, the batch rolls its transaction back."""
    _here.job = True
    try:
        result = job.function(*job.args, **job.kwargs)
    except Exception as error:
        return _Failed(error)
    finally:
        _here.job = False
    # A failed statement the job caught was undone by SQLite alone, as it would have been
    # outside a transaction: the job's other writes stand, and so does the batch.
    db.needs_rollback = False
    return result


def _in_savepoint(db, job: _Job):
    """Run one of several jobs in a savepoint of its own, undone if it raises."""
    raw = db.connection
    if not raw.in_transaction:  # SQLite rolled it back (a full disk): nothing to join
        raise DatabaseError("this turn's transaction was rolled back")
    raw.execute("SAVEPOINT sipws")
    hooks = len(db.run_on_commit)
    outcome = _alone(db, job)
    if isinstance(outcome, _Failed):
        _undo(db, hooks)
    else:
        raw.execute("RELEASE sipws")
    return outcome


class _Here(threading.local):
    """The batch running on this thread, which it shares with its jobs: itself, its
    connection, and whether a job is running (so that `atomic()` is a bare savepoint)."""

    batch: _Batch | None = None
    db: BaseDatabaseWrapper | None = None
    job = False


_here = _Here()


def batch_connection() -> BaseDatabaseWrapper | None:
    """The connection of the batch running on this thread, if any: looked up once per
    batch instead of once per statement (`connections[...]` costs a context lookup)."""
    return _here.db


def atomic():
    """`transaction.atomic()` for engine jobs. Inside a job of a batch it is a bare SQLite
    savepoint, with the effect of Django's (the block's writes go if it raises, or if a
    statement in it failed) for a fraction of the cost."""
    if _here.job:
        return _savepoint(_here.db)
    return transaction.atomic()


class _savepoint:  # noqa: N801 (used as a function: `with _savepoint(db):`)
    """A bare SQLite savepoint with the effect of Django's atomic (the block's writes go
    if it raises, or if a statement in it failed). A class: contextlib's generator
    machinery cost more than the two statements, in every request's job."""

    __slots__ = ("db", "hooks")

    def __init__(self, db) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.connection.execute("SAVEPOINT sipws")
        self.hooks = len(self.db.run_on_commit)

    def __exit__(self, kind, error, traceback) -> None:
        db = self.db
        if kind is not None or db.needs_rollback:  # raised, or a statement in it failed
            _undo(db, self.hooks)
        else:
            db.connection.execute("RELEASE sipws")


def _undo(db, hooks: int) -> None:
    """Roll back to the last savepoint, and drop the `on_commit` callbacks registered
    since (`hooks` were registered before it), as Django does for its own savepoints."""
    raw = db.connection
    if raw.in_transaction:  # else SQLite has rolled back everything already
        raw.execute("ROLLBACK TO sipws")
        raw.execute("RELEASE sipws")
    del db.run_on_commit[hooks:]
    db.needs_rollback = False


def _synchronously(function, *args):
    # With the loop marked as not running, Django treats this as the synchronous code it
    # is: the thread's own persistent connection (not one per asyncio task), and no
    # SynchronousOnlyOperation. The call never awaits, so nothing else runs meanwhile.
    loop = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(None)
    try:
        return function(*args)
    finally:
        asyncio.events._set_running_loop(loop)


def _housekeeping() -> None:
    """CONN_MAX_AGE and health checks, once a second rather than per call."""
    global _last_housekeeping
    now = time.monotonic()
    if now - _last_housekeeping >= HOUSEKEEPING_INTERVAL:
        _last_housekeeping = now
        close_old_connections()


def _run(function, args, kwargs):
    _housekeeping()
    try:
        return function(*args, **kwargs)
    except Exception:
        close_old_connections()  # an unusable connection is dropped; the next job reconnects
        raise
