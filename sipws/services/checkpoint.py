"""SQLite's write-ahead log copied into the database file on a thread, not on the loop.

In WAL mode a commit that finds the log past 1,000 pages checkpoints it: it writes the
pages into the database file and syncs it, on the committing thread. On the engine's
connection that thread is the event loop, which then stalled for milliseconds while
SIP, WebSocket and HTTP waited. So the engine's connection never checkpoints
(`dbthread` turns its autocheckpoint off), and every CHECKPOINT_INTERVAL seconds this
job runs a PASSIVE checkpoint on a connection of its own, in a worker thread: it copies
what it can without waiting for any reader or writer. Other connections (admin, the
REST API, `manage.py sipuser`) keep SQLite's own autocheckpoint.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from django.db import DEFAULT_DB_ALIAS, connections

from .dbthread import runs_inline

CHECKPOINT_INTERVAL = 1.0  # seconds
# One thread, so one connection of its own for the life of the process.
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")


async def checkpoint(now: float) -> None:
    """The periodic job (runtime.every): a PASSIVE checkpoint off the loop, on SQLite."""
    if runs_inline():
        await asyncio.get_running_loop().run_in_executor(_executor, checkpoint_now)


def checkpoint_now() -> tuple[int, int, int]:
    """Copy the log into the database file as far as nobody needs it; SQLite's answer:
    (1 if it was blocked, frames in the log, frames copied)."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return tuple(cursor.fetchone())
