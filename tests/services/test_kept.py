"""On SQLite, what a presentity's XCAP documents say (pres-rules, pidf-manipulation) is
read once and kept while no document can have changed (services/kept): every SUBSCRIBE
and NOTIFY asks. A change on this connection or a commit on another is seen at once."""

import asyncio
import threading

import pytest
from django.db import connection, connections, transaction

from sipws.services.dbthread import in_db_thread
from xcapapi import policy
from xcapapi.integration import pidf_manipulation
from xcapapi.models import XcapDocument

pytestmark = pytest.mark.django_db(transaction=True)

ALICE, BOB = "sip:alice@localhost", "sip:bob@localhost"
RULES = (
    '<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy"'
    ' xmlns:pr="urn:ietf:params:xml:ns:pres-rules">'
    '<cr:rule id="r"><cr:conditions><cr:identity><cr:one id="sip:bob@localhost"/>'
    "</cr:identity></cr:conditions><cr:actions><pr:sub-handling>{}</pr:sub-handling>"
    "</cr:actions></cr:rule></cr:ruleset>"
)
PIDF = b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@localhost"/>'


@pytest.fixture(autouse=True)
def confirm_by_default(settings):
    settings.SIP = {**settings.SIP, "DEFAULT_POLICY": "confirm", "FORCE_ACTIVE": False}


def _rules(handling: str) -> XcapDocument:
    return XcapDocument.objects.create(
        username="alice", domain="localhost", auid="pres-rules", xui=ALICE, name="index",
        body=RULES.format(handling).encode(), etag=f"e-{handling}",
        content_type="application/auth-policy+xml",
    )  # fmt: skip


def _decision() -> str:
    return policy.decide(BOB, ALICE).status


def _reads(statements: list[str]) -> int:
    return sum('FROM "xcapapi_xcapdocument"' in s for s in statements)


def _turns(*jobs):
    """Each job in a turn of its own on the engine's connection; the results and the
    statements SQLite ran."""
    seen: list[str] = []

    async def main():
        return [await in_db_thread(job)() for job in jobs]

    connection.ensure_connection()
    raw = connection.connection
    raw.set_trace_callback(seen.append)
    try:
        return asyncio.run(main()), seen
    finally:
        raw.set_trace_callback(None)


def _elsewhere(work) -> None:
    def run():
        try:
            work()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def test_documents_are_read_once_while_none_changes():
    _rules("block")
    answers, statements = _turns(_decision, _decision, _decision)
    assert answers == ["terminated"] * 3
    assert _reads(statements) == 2  # the versions once, the rules document once


def test_a_document_saved_on_this_connection_is_seen_by_the_next_decision():
    document = _rules("block")
    assert _turns(_decision)[0] == ["terminated"]
    document.body = RULES.format("allow").encode()
    document.etag = "e-allow"
    document.save()
    assert _turns(_decision)[0] == ["active"]


def test_a_commit_on_another_connection_is_seen_by_the_next_decision():
    _rules("block")
    assert _turns(_decision)[0] == ["terminated"]
    # No signal: an UPDATE of another connection shows only in SQLite's data_version.
    _elsewhere(lambda: XcapDocument.objects.filter(xui=ALICE).update(etag="e-gone", body=b""))
    assert _turns(_decision)[0] == ["pending"]  # an unreadable document: no rule applies


def test_nothing_is_kept_from_a_transaction_that_wrote_a_document_and_rolled_back():
    with pytest.raises(LookupError), transaction.atomic():
        _rules("block")
        assert _decision() == "terminated"
        raise LookupError("rolled back")
    assert not XcapDocument.objects.exists()
    assert _decision() == "pending"


def test_pidf_manipulation_is_kept_and_seen_to_change():
    assert _turns(lambda: pidf_manipulation(ALICE))[0] == [[]]
    document = XcapDocument.objects.create(
        username="alice", domain="localhost", auid="pidf-manipulation", xui=ALICE,
        name="index", body=PIDF, etag="p1", content_type="application/pidf+xml",
    )  # fmt: skip
    (first, second), statements = _turns(
        lambda: pidf_manipulation(ALICE), lambda: pidf_manipulation(ALICE)
    )
    assert [p.body for p in first] == [p.body for p in second] == [PIDF]
    assert _reads(statements) == 1
    document.delete()
    assert _turns(lambda: pidf_manipulation(ALICE))[0] == [[]]


def test_a_full_store_forgets_its_oldest_answers_not_all(monkeypatch):
    """At the limit the oldest tenth goes: the rest of a working set near the limit
    (thousands of presentities) stays kept."""
    from sipws.services import kept

    monkeypatch.setattr(kept, "LIMIT", 20)
    users = [f"sip:u{i}@localhost" for i in range(20)]  # one answer each: the limit

    def ask(who):
        return lambda: [policy.decide(BOB, user).status for user in who]

    _, statements = _turns(ask(users), ask(users))
    assert _reads(statements) == 20  # each presentity's documents read once, in turn one
    _, statements = _turns(ask(["sip:new@localhost"]), ask(users[2:]), ask(users[:2]))
    # The new presentity made room by dropping the two oldest answers (u0's and u1's);
    # u2 to u19 were still kept; u0 and u1 are read again.
    assert _reads(statements) == 1 + 0 + 2
