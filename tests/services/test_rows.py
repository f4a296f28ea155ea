"""rows.Table gives back what the ORM would store and read, and fails as the ORM would;
dbthread runs SQLite jobs inline on one connection, keeps the caller's context and passes
errors back. (The cluster tests run the same statements on PostgreSQL.)"""

import asyncio
import contextvars
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import signals
from django.test.utils import CaptureQueriesContext

from sipws.models import ActiveWatcher, Presentity, SipAccount, SubscriptionStatus, Watcher
from sipws.services import dbthread
from sipws.services.accounts import (
    change_password,
    create_account,
    delete_account,
    enabled_account,
    set_enabled,
)
from sipws.services.dbthread import in_db_thread, runs_inline
from sipws.services.rows import Table

pytestmark = pytest.mark.django_db(transaction=True)

presentities = Table(Presentity)


def _publication(**fields) -> Presentity:
    defaults = dict(
        uri="sip:alice@localhost",
        event="presence",
        etag="e1",
        expires=datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        received_time=1.5,
        content_type="application/pidf+xml",
        body=b"<presence/>\x00\xff",
        publisher="sip:alice@localhost",
    )
    return Presentity(**{**defaults, **fields})


def test_insert_then_orm_reads_the_same_values():
    row = presentities.insert(_publication())
    stored = Presentity.objects.get(pk=row.pk)
    assert stored.expires == datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert bytes(stored.body) == b"<presence/>\x00\xff"
    assert (stored.etag, stored.received_time) == ("e1", 1.5)


def test_select_converts_as_the_orm_does():
    _publication().save()
    ours = presentities.first(
        '"uri" = %s AND "expires" > %s', ["sip:alice@localhost", datetime.now(UTC)]
    )
    orm = Presentity.objects.get(uri="sip:alice@localhost")
    assert ours.pk == orm.pk
    assert ours.expires == orm.expires and ours.expires.tzinfo is not None
    assert bytes(ours.body) == bytes(orm.body)
    assert presentities.first('"expires" > %s', [datetime(2031, 1, 1, tzinfo=UTC)]) is None


def test_selected_instances_behave_as_loaded_by_the_orm():
    _publication().save()
    ours = presentities.first('"uri" = %s', ["sip:alice@localhost"])
    orm = Presentity.objects.get(uri="sip:alice@localhost")
    assert {f.attname: getattr(ours, f.attname) for f in Presentity._meta.concrete_fields} == {
        f.attname: getattr(orm, f.attname) for f in Presentity._meta.concrete_fields
    }
    assert (ours._state.adding, ours._state.db) == (False, "default")
    ours.etag = "e2"
    ours.save()  # an UPDATE of the stored row, not a second INSERT
    assert list(Presentity.objects.values_list("etag", flat=True)) == ["e2"]


def test_selects_still_send_init_signals_when_someone_listens():
    _publication().save()
    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance)

    fresh = Table(Presentity)  # whether anyone listens is read once per table
    signals.post_init.connect(listener, sender=Presentity)
    try:
        row = fresh.first('"uri" = %s', ["sip:alice@localhost"])
    finally:
        signals.post_init.disconnect(listener, sender=Presentity)
    assert seen == [row]


def test_new_instances_are_what_the_model_makes_defaults_included():
    values = dict(
        presentity_uri="sip:alice@localhost", watcher_uri="sip:bob@localhost", event="presence",
        call_id="c", from_tag="f", to_tag="t", remote_cseq=1, contact="sip:bob@127.0.0.1",
        flow="udp:127.0.0.1:5060", expires=datetime(2030, 1, 1, tzinfo=UTC), status="active",
    )  # fmt: skip
    ours, model = Table(ActiveWatcher).new(**values), ActiveWatcher(**values)
    attnames = [f.attname for f in ActiveWatcher._meta.concrete_fields]
    mine = {name: getattr(ours, name) for name in attnames if name != "created"}
    assert mine == {name: getattr(model, name) for name in attnames if name != "created"}
    assert ours.local_cseq == 0 and ours.pk is None and ours.created.tzinfo is not None
    assert (ours._state.adding, ours._state.db) == (True, None)
    Table(ActiveWatcher).insert(ours)
    assert ActiveWatcher.objects.get(pk=ours.pk).call_id == "c"
    with pytest.raises(TypeError, match="no field 'colour'"):
        Table(ActiveWatcher).new(**values, colour="red")


def test_update_count_delete_and_increment():
    row = presentities.insert(_publication())
    row.etag = "e2"
    presentities.save_fields(row, "etag")
    assert Presentity.objects.get(pk=row.pk).etag == "e2"
    assert presentities.count('"publisher" = %s', ["sip:alice@localhost"]) == 1
    assert presentities.delete_ids([row.pk]) == 1
    assert not Presentity.objects.exists()


def test_increment_and_upsert():
    watcher = ActiveWatcher.objects.create(
        presentity_uri="sip:alice@localhost", watcher_uri="sip:bob@localhost", event="presence",
        call_id="c", from_tag="f", to_tag="t", remote_cseq=1, contact="sip:bob@127.0.0.1",
        flow="udp:127.0.0.1:5060", expires=datetime.now(UTC) + timedelta(minutes=5),
        status="active",
    )  # fmt: skip
    Table(ActiveWatcher).increment("local_cseq", [watcher.pk])
    Table(ActiveWatcher).increment("local_cseq", [watcher.pk])
    assert ActiveWatcher.objects.get(pk=watcher.pk).local_cseq == 2
    watchers = Table(Watcher)
    unique = ("presentity_uri", "watcher_uri", "event")
    fields = (*unique, "watcher_display", "status", "reason", "inserted_time", "updated")
    key, now = ("sip:alice@localhost", "sip:bob@localhost", "presence", ""), datetime.now(UTC)
    update = ("status", "reason")
    watchers.upsert(fields, [(*key, "pending", "", now, now)], unique, update)
    watchers.upsert(fields, [(*key, "active", "subscribe", now, now)], unique, update)
    assert list(Watcher.objects.values_list("status", "reason")) == [("active", "subscribe")]


def _stored(model, pk) -> dict:
    """The row as SQLite holds it, by column less the id: each value as an SQL literal
    (`quote()`), so that text, numbers and blobs compare before any conversion."""
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    literals = ", ".join(f'quote("{column}")' for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT {literals} FROM {model._meta.db_table} WHERE "id" = %s', [pk])
        return dict(zip(columns, cursor.fetchone(), strict=True))


def _differing(model, first_pk, second_pk) -> set[str]:
    first, second = _stored(model, first_pk), _stored(model, second_pk)
    return {column for column in first if first[column] != second[column]}


@pytest.mark.parametrize(
    "values",
    [
        dict(status=SubscriptionStatus.ACTIVE, expires=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        dict(status="pending", expires=datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=UTC)),
        # Not UTC, and not an int: Django's own conversion, which the fast path leaves to it.
        dict(expires=datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))),
        dict(remote_cseq="7", version=True, status="active"),
    ],
)
def test_insert_and_update_store_exactly_what_the_orm_stores(values):
    fields = dict(
        presentity_uri="sip:alice@localhost", watcher_uri="sip:bob@localhost", event="presence",
        call_id="c", from_tag="f", to_tag="t", remote_cseq=1, contact="sip:bob@127.0.0.1",
        flow="udp:127.0.0.1:5060", expires=datetime.now(UTC), status="active",
        created=datetime(2029, 5, 6, 7, 8, 9, 10, tzinfo=UTC),
    )  # fmt: skip
    fields.update(values)
    table = Table(ActiveWatcher)
    ours = table.insert(ActiveWatcher(**fields))
    orm = ActiveWatcher.objects.create(**{**fields, "call_id": "c2"})
    # `updated` is auto_now: the moment of writing, which differs.
    assert _differing(ActiveWatcher, ours.pk, orm.pk) == {"updated", "call_id"}
    changed = {"expires": fields["expires"] + timedelta(seconds=1), "status": "terminated"}
    table.update(changed, '"id" = %s', [ours.pk])
    ActiveWatcher.objects.filter(pk=orm.pk).update(**changed)
    assert _differing(ActiveWatcher, ours.pk, orm.pk) == {"updated", "call_id"}
    assert _stored(ActiveWatcher, ours.pk)["status"] == "'terminated'"


def test_enabled_account_skips_disabled_accounts():
    create_account("carol@localhost", "secret", create_login=False)
    assert enabled_account("carol", "localhost").aor == "sip:carol@localhost"
    set_enabled("carol@localhost", False)
    assert enabled_account("carol", "localhost") is None
    assert enabled_account("nobody", "localhost") is None


def test_enabled_account_answers_a_repeat_from_memory():
    create_account("carol@localhost", "secret", create_login=False)
    with CaptureQueriesContext(connection) as first:
        account = enabled_account("carol", "localhost")
        assert enabled_account("nobody", "localhost") is None
    with CaptureQueriesContext(connection) as repeat:
        assert enabled_account("carol", "localhost").pk == account.pk
        assert enabled_account("nobody", "localhost") is None
    assert len(first) == 2
    assert len(repeat) == 0


def test_enabled_account_sees_this_process_change_the_account():
    create_account("carol@localhost", "secret", create_login=False)
    before = enabled_account("carol", "localhost").ha1_md5
    change_password("carol@localhost", "other")
    assert enabled_account("carol", "localhost").ha1_md5 != before
    delete_account("carol@localhost")
    assert enabled_account("carol", "localhost") is None
    create_account("carol@localhost", "secret", create_login=False)
    assert enabled_account("carol", "localhost").ha1_md5 == before


def test_enabled_account_sees_a_commit_on_another_connection():
    create_account("carol@localhost", "secret", create_login=False)
    assert enabled_account("carol", "localhost") is not None
    assert enabled_account("dave", "localhost") is None

    def elsewhere():  # another thread: another connection, as admin or `sipuser` would be
        try:  # writes that send no signal: only the database can tell of them
            SipAccount.objects.filter(username="carol").update(enabled=False)
            SipAccount.objects.bulk_create([SipAccount(username="dave", domain="localhost")])
        finally:
            connections.close_all()

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert enabled_account("carol", "localhost") is None
    assert enabled_account("dave", "localhost").aor == "sip:dave@localhost"


def test_enabled_account_keeps_nothing_a_rollback_undoes():
    create_account("carol@localhost", "secret", create_login=False)
    stored = enabled_account("carol", "localhost").ha1_md5
    with pytest.raises(ValueError), transaction.atomic():
        change_password("carol@localhost", "other")
        assert enabled_account("carol", "localhost").ha1_md5 != stored
        raise ValueError("roll back")
    assert enabled_account("carol", "localhost").ha1_md5 == stored


request_id = contextvars.ContextVar("request_id", default=None)


def _read_context():
    return request_id.get()


def _fail():
    raise ValueError("boom")


def test_db_thread_keeps_context_and_raises_errors():
    async def main():
        request_id.set("r1")
        assert await in_db_thread(_read_context)() == "r1"
        with pytest.raises(ValueError, match="boom"):
            await in_db_thread(_fail)()

    asyncio.run(main())


def _connection_and_thread():
    from django.db import connection

    connection.ensure_connection()
    return connection.connection, threading.get_ident()


def test_sqlite_jobs_run_inline_on_one_persistent_connection():
    """On SQLite an engine job runs on the loop's thread (no hop), and jobs of different
    asyncio tasks share the thread's connection instead of opening one per task."""

    async def main():
        first = await asyncio.create_task(in_db_thread(_connection_and_thread)())
        second = await asyncio.create_task(in_db_thread(_connection_and_thread)())
        return first, second, threading.get_ident()

    assert runs_inline()
    (first_connection, first_thread), (second_connection, second_thread), loop_thread = asyncio.run(
        main()
    )
    assert first_thread == second_thread == loop_thread
    assert first_connection is second_connection


def test_jobs_off_sqlite_run_on_the_database_thread(monkeypatch):
    """Where statements are network round trips (PostgreSQL), jobs leave the loop."""
    monkeypatch.setattr(dbthread, "runs_inline", lambda: False)

    async def main():
        return await in_db_thread(threading.current_thread)(), threading.current_thread()

    job_thread, loop_thread = asyncio.run(main())
    assert job_thread is not loop_thread
    assert job_thread.name.startswith("sip-db")


def test_sqlite_cursor_errors_are_djangos_and_leave_the_transaction_usable():
    presentities.insert(_publication())
    accounts = Table(SipAccount)
    create_account("dora@localhost", "pw", create_login=False)
    duplicate = SipAccount(username="dora", domain="localhost", ha1_md5="x", ha1_sha256="y")
    with pytest.raises(IntegrityError), transaction.atomic():
        accounts.insert(duplicate)
    assert accounts.count('"username" = %s', ["dora"]) == 1
    assert presentities.count('"uri" = %s', ["sip:alice@localhost"]) == 1
