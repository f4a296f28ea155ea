"""The SIP engine's database thread: one cheap hop per request.

channels' `database_sync_to_async` costs about 90 µs a call here (context handling, an
executor lookup, and `close_old_connections` before and after, which with PostgreSQL's
CONN_HEALTH_CHECKS adds a `SELECT 1` round trip to every request); a plain executor hop
costs about 30 µs. All engine database work runs on this one thread, so SQLite has one
writer and each request's transaction runs on the same persistent connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sip-db")
HOUSEKEEPING_INTERVAL = 1.0  # seconds between connection age and health checks
_last_housekeeping = 0.0


def in_db_thread(function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`function` as a coroutine function run on the database thread, in the caller's
    context (log context, policy batch)."""

    @functools.wraps(function)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        job = functools.partial(contextvars.copy_context().run, _run, function, args, kwargs)
        return await asyncio.get_running_loop().run_in_executor(_executor, job)

    return call


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
