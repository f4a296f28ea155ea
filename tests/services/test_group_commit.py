"""On SQLite the engine jobs of one turn of the event loop share one transaction: one
commit for all, each caller answered only once its writes are committed, and a job that
fails undoes its own writes and nobody else's (services/dbthread, `_Batch`)."""

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, OperationalError, connection, connections, transaction

from sipws.models import Presentity, SipAccount
from sipws.services import dbthread
from sipws.services.accounts import create_account, enabled_account
from sipws.services.dbthread import in_db_thread, runs_inline
from sipws.services.rows import Table

pytestmark = pytest.mark.django_db(transaction=True)

presentities = Table(Presentity)
accounts = Table(SipAccount)


def _publish(etag: str) -> str:
    presentities.insert(
        Presentity(
            uri="sip:alice@localhost",
            event="presence",
            etag=etag,
            expires=datetime.now(UTC) + timedelta(hours=1),
            received_time=1.0,
            content_type="application/pidf+xml",
            body=b"<presence/>",
            publisher="sip:alice@localhost",
        )
    )
    return etag


def _publish_then_fail(etag: str) -> None:
    _publish(etag)
    raise ValueError("boom")


def _publish_and_catch_a_failed_block(etag: str, failing: str) -> str:
    """A job that writes, then has an inner block fail (as a 412 inside the publication's
    transaction does) and answers anyway."""
    _publish(etag)
    try:
        with dbthread.atomic():
            _publish(failing)
            raise LookupError("refused")
    except LookupError:
        pass
    return etag


def _publish_and_catch_a_duplicate(etag: str) -> str:
    """A job whose ORM statement fails inside the database (a unique constraint): Django
    then marks the transaction as needing a rollback."""
    _publish(etag)
    try:
        SipAccount.objects.create(username="dora", domain="localhost", ha1_md5="x")
    except IntegrityError:
        pass
    return etag


def _stored_elsewhere() -> list[str]:
    """The entity-tags another connection (another thread's) sees committed."""
    seen: list[str] = []

    def read():
        try:
            seen.extend(Presentity.objects.order_by("etag").values_list("etag", flat=True))
        finally:
            connections.close_all()

    reader = threading.Thread(target=read)
    reader.start()
    reader.join()
    return seen


class _Statements:
    """The SQL statements SQLite runs on this thread's connection, as it runs them."""

    def __init__(self) -> None:
        connection.ensure_connection()
        self.raw, self.seen = connection.connection, []
        self.raw.set_trace_callback(self.seen.append)

    def count(self, prefix: str) -> int:
        return sum(statement.upper().startswith(prefix) for statement in self.seen)

    def close(self) -> None:
        self.raw.set_trace_callback(None)


def _run(main):
    """asyncio.run with statements traced on the loop thread's connection."""
    statements = _Statements()
    try:
        return asyncio.run(main()), statements
    finally:
        statements.close()


def test_jobs_of_one_turn_share_one_commit_and_are_answered_after_it():
    assert runs_inline()
    seen_on_answer: dict[str, list[str]] = {}

    async def caller(etag):
        await in_db_thread(_publish)(etag)
        seen_on_answer[etag] = _stored_elsewhere()

    async def main():
        await asyncio.gather(*(caller(etag) for etag in ("a", "b", "c")))

    _, statements = _run(main)
    assert statements.count("COMMIT") == 1
    assert statements.count("BEGIN") == 1
    assert _stored_elsewhere() == ["a", "b", "c"]
    # Each caller resumed only once the others' writes were committed too.
    assert seen_on_answer == {etag: ["a", "b", "c"] for etag in "abc"}


def test_jobs_of_different_turns_commit_each_on_their_own():
    async def main():
        await in_db_thread(_publish)("a")
        assert _stored_elsewhere() == ["a"]
        await in_db_thread(_publish)("b")

    _, statements = _run(main)
    assert statements.count("COMMIT") == 2
    assert _stored_elsewhere() == ["a", "b"]


def test_a_failing_job_undoes_its_own_writes_only():
    async def main():
        return await asyncio.gather(
            in_db_thread(_publish)("a"),
            in_db_thread(_publish_then_fail)("b"),
            in_db_thread(_publish)("c"),
            return_exceptions=True,
        )

    (first, failed, last), statements = _run(main)
    assert (first, last) == ("a", "c")
    assert isinstance(failed, ValueError) and str(failed) == "boom"
    assert statements.count("COMMIT") == 1
    assert _stored_elsewhere() == ["a", "c"]


def test_a_block_that_fails_inside_a_job_undoes_that_block_only():
    async def main():
        return await asyncio.gather(
            in_db_thread(_publish_and_catch_a_failed_block)("a", "a-refused"),
            in_db_thread(_publish)("b"),
        )

    answers, _ = _run(main)
    assert answers == ["a", "b"]
    assert _stored_elsewhere() == ["a", "b"]


def test_a_statement_the_database_refuses_leaves_the_shared_transaction_usable():
    create_account("dora@localhost", "pw", create_login=False)

    async def main():
        return await asyncio.gather(
            in_db_thread(_publish_and_catch_a_duplicate)("a"),
            in_db_thread(_publish)("b"),
        )

    answers, statements = _run(main)
    assert answers == ["a", "b"]
    assert statements.count("COMMIT") == 1
    assert _stored_elsewhere() == ["a", "b"]
    assert accounts.count('"username" = %s', ["dora"]) == 1


def test_a_caller_cancelled_while_waiting_for_the_commit_does_not_cancel_the_others():
    async def main():
        first = asyncio.ensure_future(in_db_thread(_publish)("a"))
        second = asyncio.ensure_future(in_db_thread(_publish)("b"))
        await asyncio.sleep(0)  # both jobs are queued; both callers wait for them
        first.cancel()
        answer = await asyncio.wait_for(second, timeout=5)
        with pytest.raises(asyncio.CancelledError):
            await first
        return answer

    answer, statements = _run(main)
    assert answer == "b"
    assert statements.count("COMMIT") == 1
    # The cancelled caller's job runs all the same: its write is committed with the rest.
    assert _stored_elsewhere() == ["a", "b"]


def _look_up(username: str):
    account = enabled_account(username, "localhost")
    return account.username if account else None


def _disable_elsewhere(username: str) -> None:
    def disable():
        try:
            SipAccount.objects.filter(username=username).update(enabled=False)  # no signal
        finally:
            connections.close_all()

    writer = threading.Thread(target=disable)
    writer.start()
    writer.join()


def test_account_answers_are_checked_once_per_turn_and_see_the_next_commit():
    """While a turn's transaction is open no other connection can commit, so the accounts
    kept in memory are checked against `PRAGMA data_version` once per turn."""
    create_account("erin@localhost", "pw", create_login=False)

    async def main():
        same_turn = await asyncio.gather(*(in_db_thread(_look_up)("erin") for _ in range(3)))
        _disable_elsewhere("erin")  # another connection commits between two turns
        return same_turn, await in_db_thread(_look_up)("erin")

    (same_turn, next_turn), statements = _run(main)
    assert same_turn == ["erin", "erin", "erin"]
    assert next_turn is None
    assert statements.count("PRAGMA DATA_VERSION") == 2


committed_hooks: list[str] = []


def _publish_with_hook(etag: str, fail: bool = False) -> str:
    _publish(etag)
    transaction.on_commit(lambda: committed_hooks.append(etag))
    if fail:
        raise ValueError("boom")
    return etag


def test_on_commit_callbacks_run_after_the_commit_and_only_for_jobs_that_stand():
    committed_hooks.clear()

    async def main():
        return await asyncio.gather(
            in_db_thread(_publish_with_hook)("a"),
            in_db_thread(_publish_with_hook)("b", fail=True),
            return_exceptions=True,
        )

    (stood, failed), _ = _run(main)
    assert stood == "a" and isinstance(failed, ValueError)
    assert committed_hooks == ["a"]
    assert _stored_elsewhere() == ["a"]


def test_a_job_alone_in_its_turn_needs_no_savepoint_and_fails_on_its_own():
    """A turn with one job: its transaction is its savepoint. When it raises, the
    transaction is rolled back (its write and `on_commit` callback go), its caller gets
    the error, and the next turn's job is stored as usual."""
    committed_hooks.clear()

    async def main():
        failed = await asyncio.gather(
            in_db_thread(_publish_with_hook)("a", fail=True), return_exceptions=True
        )
        return failed, await in_db_thread(_publish_with_hook)("b")

    ([failed], answer), statements = _run(main)
    assert isinstance(failed, ValueError) and str(failed) == "boom"
    assert answer == "b"
    assert statements.count("SAVEPOINT") == 0
    assert statements.count("ROLLBACK") == 1
    assert statements.count("COMMIT") == 1
    assert committed_hooks == ["b"]
    assert _stored_elsewhere() == ["b"]


def test_a_job_alone_in_its_turn_still_undoes_a_block_that_fails():
    async def main():
        return await in_db_thread(_publish_and_catch_a_failed_block)("a", "a-refused")

    answer, _ = _run(main)
    assert answer == "a"
    assert _stored_elsewhere() == ["a"]


def test_the_loop_connection_is_made_not_to_wait_once_not_per_turn():
    """BEGIN must not sleep on the loop's thread (see the write-lock tests); the busy
    timeout is set to 0 once per connection, not around every BEGIN."""

    async def main():
        for etag in "abc":
            await in_db_thread(_publish)(etag)

    _, statements = _run(main)
    assert statements.count("BEGIN") == 3
    assert statements.count("PRAGMA BUSY_TIMEOUT") <= 1
    assert _stored_elsewhere() == ["a", "b", "c"]


def test_a_batch_left_on_a_closed_loop_does_not_hold_the_next_loops_jobs():
    """A loop closed before its turn ended (a test's, a shut-down server's) leaves its
    queued batch behind; jobs on the next loop start a batch of their own."""
    closed = asyncio.SelectorEventLoop()  # asyncio's: it stops after the turn in hand

    def stop_and_queue():
        closed.stop()  # this turn is the loop's last: the batch's never comes
        dbthread._Batch.queue(_publish, ("lost",), {})

    closed.call_soon(stop_and_queue)
    closed.run_forever()
    closed.close()

    async def main():
        return await asyncio.wait_for(in_db_thread(_publish)("b"), timeout=5)

    answer, _ = _run(main)
    assert answer == "b"
    assert _stored_elsewhere() == ["b"]


def _lock_held_for(monkeypatch, tries: int) -> list[int]:
    """BEGIN finds the write lock held elsewhere for the first `tries` tries."""
    real_begin, attempts = dbthread._begin, []

    def begin():
        attempts.append(1)
        return None if len(attempts) <= tries else real_begin()

    monkeypatch.setattr(dbthread, "_begin", begin)
    return attempts


def test_jobs_wait_for_a_write_lock_held_elsewhere_and_those_queued_meanwhile_join_them(
    monkeypatch,
):
    attempts = _lock_held_for(monkeypatch, tries=3)

    async def main():
        first = asyncio.ensure_future(in_db_thread(_publish)("a"))
        await asyncio.sleep(0.002)  # the batch is waiting for the lock
        return await asyncio.gather(first, in_db_thread(_publish)("b"))

    answers, statements = _run(main)
    assert answers == ["a", "b"]
    assert len(attempts) == 4
    assert statements.count("COMMIT") == 1
    assert _stored_elsewhere() == ["a", "b"]


def test_jobs_fail_when_the_write_lock_stays_held_past_the_busy_timeout(monkeypatch):
    _lock_held_for(monkeypatch, tries=10**6)
    monkeypatch.setattr(dbthread, "_busy_timeout", lambda: 0.05)

    async def main():
        return await asyncio.gather(in_db_thread(_publish)("a"), return_exceptions=True)

    [failed], statements = _run(main)
    assert isinstance(failed, OperationalError) and "database is locked" in str(failed)
    assert statements.count("BEGIN") == 0
    assert _stored_elsewhere() == []


def test_a_batch_whose_begin_failed_takes_no_more_jobs(monkeypatch):
    """BEGIN failing for another reason than the lock (a disk error) fails that batch's
    callers; a job queued afterwards runs in a batch of its own."""
    real_begin, attempts = dbthread._begin, []

    def begin():
        attempts.append(1)
        if len(attempts) == 1:
            raise OperationalError("disk I/O error")
        return real_begin()

    monkeypatch.setattr(dbthread, "_begin", begin)

    async def main():
        with pytest.raises(OperationalError, match="disk I/O error"):
            await in_db_thread(_publish)("a")
        return await asyncio.wait_for(in_db_thread(_publish)("b"), timeout=5)

    answer, statements = _run(main)
    assert answer == "b"
    assert statements.count("COMMIT") == 1
    assert _stored_elsewhere() == ["b"]
