"""Where the SIP engine's database work runs: inline on SQLite, else on one thread.

Every engine job is a short synchronous function (a request's transaction), awaited
through `in_db_thread`.

- On SQLite (the embedded default) a job runs inline on the event loop's thread. SQLite
  is a library in this process: an indexed statement takes microseconds, and a hop to
  another thread cost more than the work. Handing each request's objects to a thread on
  another core and back, and the two threads' turns on the GIL, made a PUBLISH about
  20 % dearer (a closed-loop sipp PUBLISH lifecycle, `-l 30`: 141-162 calls/s threaded,
  188-204 inline). The price: while another connection holds SQLite's write lock (a long
  admin action, VACUUM), the whole loop waits for it, HTTP and WebSocket included, where
  before only the engine's requests waited.
- On PostgreSQL a statement is a network round trip, which must not stall the loop: jobs
  run on one thread (`_executor`), one cheap executor hop per request. channels'
  `database_sync_to_async` cost about 90 µs a call (context handling, an executor lookup,
  and `close_old_connections` before and after, which with CONN_HEALTH_CHECKS adds a
  `SELECT 1` round trip to every request).

Either way a job runs in the caller's context (log context, policy batch) on one
persistent connection, and connections are checked for age and health once a second.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections

P = ParamSpec("P")
R = TypeVar("R")

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sip-db")
HOUSEKEEPING_INTERVAL = 1.0  # seconds between connection age and health checks
_last_housekeeping = 0.0


def in_db_thread(function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`function` as a coroutine function that runs it where engine database work runs
    (see the module's docstring), in the caller's context."""

    @functools.wraps(function)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        if runs_inline():
            return _run_inline(function, args, kwargs)
        job = functools.partial(contextvars.copy_context().run, _run, function, args, kwargs)
        return await asyncio.get_running_loop().run_in_executor(_executor, job)

    return call


def runs_inline() -> bool:
    """Whether engine jobs run on the event loop's thread (SQLite) or on `_executor`."""
    return settings.DATABASES[DEFAULT_DB_ALIAS]["ENGINE"].endswith("sqlite3")


def _run_inline(function, args, kwargs):
    # With the loop marked as not running, Django treats this as the synchronous code it
    # is: the thread's own persistent connection (not one per asyncio task), and no
    # SynchronousOnlyOperation. The job never awaits, so nothing else runs meanwhile.
    loop = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(None)
    try:
        return _run(function, args, kwargs)
    finally:
        asyncio.events._set_running_loop(loop)


def _run(function, args, kwargs):
    global _last_housekeeping
    now = time.monotonic()
    if now - _last_housekeeping >= HOUSEKEEPING_INTERVAL:
        _last_housekeeping = now
        close_old_connections()  # CONN_MAX_AGE and health checks, once a second not per call
    try:
        return function(*args, **kwargs)
    except Exception:
        close_old_connections()  # an unusable connection is dropped; the next job reconnects
        raise
