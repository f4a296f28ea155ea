"""PUBLISH over real sockets (RFC 3903, RFC 3863): initial, refresh, modify, remove, the
refusals, several devices, same-device replacement, arrival order, expiry and the cap.

Alice publishes, bob watches her. Each test checks the reply, the stored publications
(rows of sipws_presentity) and what bob is notified of.
"""

import time
from datetime import UTC, datetime

import pytest

from tests.conftest import USERS
from tests.presence import (
    PIDF_TYPE,
    NotifyCollector,
    assert_silent,
    cseq,
    next_notify,
    pidf,
    publications,
    publish,
    snapshot,
    state,
    tuples,
    watch,
)
from tests.serverproc import provision
from tests.sipclient import parse_challenges

ALICE = "sip:alice@localhost"


def seconds_left(row: dict) -> float:
    expires = datetime.fromisoformat(row["expires"]).replace(tzinfo=UTC)
    return (expires - datetime.now(UTC)).total_seconds()


@pytest.fixture
def bob(server, ua):
    """Bob watching alice over WebSocket, the immediate NOTIFY already read."""
    client = ua("ws", server, user="bob")
    watch(client)
    return client


def assert_refused(server, alice, bob, status: int, body: str = "", **kwargs):
    before = snapshot(server)
    reply = publish(alice, body, **kwargs)
    assert reply.status == status, reply.text
    assert reply.header("SIP-ETag") is None
    assert snapshot(server) == before
    assert_silent(bob, 0.2)
    return reply


# The lifecycle ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp", "ws"])
def test_initial_publish_is_stored_and_notified(server, ua, bob, transport):
    alice = ua(transport, server, user="alice")
    body = pidf(ALICE, note="hello")

    reply = publish(alice, body, expires=600)

    assert reply.status == 200, reply.text
    etag = reply.header("SIP-ETag")
    assert etag
    assert reply.header("Expires") == "600"
    [row] = publications(server)
    assert (row["etag"], row["event"], row["publisher"]) == (etag, "presence", ALICE)
    assert (row["call_id"], row["sender"]) == (alice.call_id, alice.contact_uri())
    assert row["content_type"] == PIDF_TYPE and bytes(row["body"]) == body.encode()
    assert 590 < seconds_left(row) <= 600
    notify = next_notify(bob)
    assert state(notify)[0] == "active"
    assert notify.header("Content-Type") == PIDF_TYPE
    assert notify.body == body  # one publication is passed on as published


def test_publish_expires_is_capped_at_the_maximum(server, ua, bob):
    alice = ua("udp", server, user="alice")

    reply = publish(alice, pidf(ALICE), expires=99999)

    assert reply.header("Expires") == "3600"
    [row] = publications(server)
    assert 3590 < seconds_left(row) <= 3600
    next_notify(bob)


def test_refresh_gives_a_new_etag_and_notifies_nobody(server, ua, bob):
    alice = ua("udp", server, user="alice")
    body = pidf(ALICE, note="kept")
    old = publish(alice, body, expires=300).header("SIP-ETag")
    next_notify(bob)

    reply = publish(alice, etag=old, expires=600)

    assert reply.status == 200, reply.text
    new = reply.header("SIP-ETag")
    assert new and new != old
    assert reply.header("Expires") == "600"
    [row] = publications(server)
    assert row["etag"] == new and bytes(row["body"]) == body.encode()
    assert 590 < seconds_left(row) <= 600
    assert_silent(bob)  # the state did not change: the engine sends no NOTIFY


def test_an_etag_replaced_by_a_refresh_gets_412(server, ua, bob):
    alice = ua("udp", server, user="alice")
    old = publish(alice, pidf(ALICE)).header("SIP-ETag")
    next_notify(bob)
    assert publish(alice, etag=old).status == 200

    assert_refused(server, alice, bob, 412, etag=old)
    assert_refused(server, alice, bob, 412, pidf(ALICE, note="late"), etag=old)


def test_modify_gives_a_new_etag_and_notifies_the_new_body(server, ua, bob):
    alice = ua("udp", server, user="alice")
    old = publish(alice, pidf(ALICE, note="before")).header("SIP-ETag")
    first = next_notify(bob)
    body = pidf(ALICE, basic="closed", note="after")

    reply = publish(alice, body, etag=old)

    assert reply.status == 200, reply.text
    new = reply.header("SIP-ETag")
    assert new and new != old
    [row] = publications(server)
    assert row["etag"] == new and bytes(row["body"]) == body.encode()
    notify = next_notify(bob)
    assert cseq(notify) == cseq(first) + 1
    assert tuples(notify.body) == [("t1", "closed", "after")]


def test_remove_notifies_the_neutral_state(server, ua, bob):
    alice = ua("udp", server, user="alice")
    etag = publish(alice, pidf(ALICE)).header("SIP-ETag")
    next_notify(bob)

    reply = publish(alice, etag=etag, expires=0)

    assert reply.status == 200, reply.text
    assert reply.header("Expires") == "0"
    assert publications(server) == []
    notify = next_notify(bob)
    assert state(notify)[0] == "active"  # the subscription goes on; only the state is gone
    assert notify.body == "" and notify.header("Content-Type") is None
    assert_refused(server, alice, bob, 412, etag=etag)


# Refusals --------------------------------------------------------------------------------


def test_initial_publish_without_body_gets_400(server, ua, bob):
    alice = ua("udp", server, user="alice")

    assert_refused(server, alice, bob, 400)


def test_unknown_etag_gets_412(server, ua, bob):
    alice = ua("udp", server, user="alice")

    assert_refused(server, alice, bob, 412, etag="no-such-etag")
    assert_refused(server, alice, bob, 412, pidf(ALICE), etag="no-such-etag")


def test_unknown_etag_leaves_the_live_publication_alone(server, ua, bob):
    alice = ua("udp", server, user="alice")
    etag = publish(alice, pidf(ALICE, note="live")).header("SIP-ETag")
    next_notify(bob)

    for expires in (600, 0):  # a refresh, a removal
        assert_refused(server, alice, bob, 412, etag="no-such-etag", expires=expires)
    [row] = publications(server)
    assert row["etag"] == etag


def test_a_type_the_package_does_not_take_gets_415(server, ua, bob):
    alice = ua("udp", server, user="alice")

    reply = assert_refused(server, alice, bob, 415, "open", content_type="text/plain")

    assert reply.header("Accept") == PIDF_TYPE


@pytest.mark.parametrize(
    "body",
    [
        "<presence",  # not well-formed
        '<foo xmlns="urn:example"/>',  # not PIDF
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{ALICE}"><tuple id="t1"/>'
        "</presence>",  # a tuple without status
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{ALICE}"><tuple id="t1">'
        "<status><basic>maybe</basic></status></tuple></presence>",
    ],
    ids=["malformed", "not-pidf", "no-status", "bad-basic"],
)
def test_invalid_pidf_gets_400(server, ua, bob, body):
    alice = ua("udp", server, user="alice")

    assert_refused(server, alice, bob, 400, body)


def test_publishing_someone_elses_presentity_gets_403(server, ua, bob):
    carol = ua("udp", server, user="carol")

    assert_refused(server, carol, bob, 403, pidf(ALICE), presentity=ALICE)


@pytest.mark.parametrize("event", [None, "nothing"])
def test_unknown_or_missing_event_gets_489(server, ua, bob, event):
    alice = ua("udp", server, user="alice")

    reply = assert_refused(server, alice, bob, 489, pidf(ALICE), event=event)

    assert "presence" in reply.header("Allow-Events")


def test_too_short_expires_gets_423(server, ua, bob):
    alice = ua("udp", server, user="alice")

    reply = assert_refused(server, alice, bob, 423, pidf(ALICE), expires=10)

    assert reply.header("Min-Expires") == "60"


# Several devices -------------------------------------------------------------------------


def test_two_devices_are_aggregated_newest_first(server, ua, bob):
    phone = ua("udp", server, user="alice")
    browser = ua("ws", server, user="alice")
    assert publish(phone, pidf(ALICE, "phone", note="on the phone")).status == 200
    next_notify(bob)

    assert publish(browser, pidf(ALICE, "browser", "closed", "away")).status == 200

    assert len(publications(server)) == 2
    notify = next_notify(bob)
    assert tuples(notify.body) == [
        ("browser", "closed", "away"),
        ("phone", "open", "on the phone"),
    ]


@pytest.mark.parametrize("same", ["call-id", "contact", "both"])
def test_same_device_republish_without_etag_replaces(server, ua, bob, same):
    alice = ua("udp", server, user="alice")
    old = publish(alice, pidf(ALICE, "old", note="first")).header("SIP-ETag")
    next_notify(bob)
    contact = "default"
    if same == "call-id":
        contact = "<sip:alice@127.0.0.1:1;transport=udp>"
    elif same == "contact":
        alice.call_id += "-restarted"

    reply = publish(alice, pidf(ALICE, "new", note="second"), contact=contact)

    assert reply.status == 200, reply.text
    [row] = publications(server)
    assert row["etag"] == reply.header("SIP-ETag") != old
    assert tuples(next_notify(bob).body) == [("new", "open", "second")]
    assert_refused(server, alice, bob, 412, etag=old)


# Order -----------------------------------------------------------------------------------


@pytest.mark.parametrize("watcher_transport", ["udp", "ws"])
def test_quick_modifies_reach_the_watcher_in_order(server, ua, watcher_transport):
    watcher = ua(watcher_transport, server, user="bob")
    watch(watcher)
    alice = ua("udp", server, user="alice")
    collector = NotifyCollector(watcher)
    try:
        etag = None
        for n in range(20):
            reply = publish(alice, pidf(ALICE, note=f"n{n}"), etag=etag)
            assert reply.status == 200, reply.text
            etag = reply.header("SIP-ETag")
        got = collector.wait(20)
    finally:
        collector.stop()

    assert [tuples(n.body)[0][2] for n in got] == [f"n{n}" for n in range(20)]
    numbers = [cseq(n) for n in got]
    assert numbers == sorted(set(numbers)), numbers


def test_a_burst_of_publishes_is_applied_in_arrival_order(server, ua, bob):
    """Twenty PUBLISHes sent back to back without waiting: the last one sent wins and the
    watcher sees every state in the order sent (one device, so each replaces the last)."""
    alice = ua("udp", server, user="alice")
    challenges = []
    for _ in range(20):
        first = alice.send(
            "PUBLISH",
            uri=ALICE,
            to=ALICE,
            expires=600,
            body=pidf(ALICE),
            headers=["Event: presence", f"Content-Type: {PIDF_TYPE}"],
        )
        assert first.status == 401, first.text
        challenges.append(parse_challenges(first.text)[0])
    collector = NotifyCollector(bob)
    try:
        for n, challenge in enumerate(challenges):
            auth = alice.authorization("PUBLISH", challenge, "MD5", kwargs={"uri": ALICE})
            body = pidf(ALICE, note=f"b{n}")
            alice.send_raw(
                alice.request(
                    "PUBLISH",
                    uri=ALICE,
                    to=ALICE,
                    expires=600,
                    auth=auth,
                    body=body,
                    headers=["Event: presence", f"Content-Type: {PIDF_TYPE}"],
                )
            )
        replies = [alice.recv() for _ in range(20)]
        got = collector.wait(20)
    finally:
        collector.stop()

    assert [r.status for r in replies] == [200] * 20, [r.start for r in replies]
    [row] = publications(server)
    assert b"<note>b19</note>" in bytes(row["body"])
    assert [tuples(n.body)[0][2] for n in got] == [f"b{n}" for n in range(20)]
    numbers = [cseq(n) for n in got]
    assert numbers == sorted(set(numbers)), numbers


# Settings: short expiry, the per-user cap ------------------------------------------------


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    proc = provision(
        tmp_path_factory.mktemp("tuned"),
        USERS,
        PRESENCE_PUBLISH_MIN_EXPIRES="1",
        PRESENCE_MAX_PUBLICATIONS_PER_USER="1",
    )
    proc.start()
    yield proc
    proc.stop()


def test_an_expired_publication_is_removed_and_watchers_notified(tuned, ua):
    bob = ua("udp", tuned, user="bob")
    watch(bob)
    alice = ua("udp", tuned, user="alice")
    assert publish(alice, pidf(ALICE, note="brief"), expires=2).status == 200
    assert tuples(next_notify(bob).body) == [("t1", "open", "brief")]
    started = time.monotonic()

    notify = next_notify(bob, timeout=5)

    assert 1 <= time.monotonic() - started < 4.5
    assert state(notify)[0] == "active"
    assert notify.body == ""  # the neutral state: nothing published
    assert publications(tuned) == []


def test_publications_over_the_per_user_cap_get_503(tuned, ua):
    bob = ua("udp", tuned, user="bob")
    watch(bob, "sip:carol@localhost")
    phone = ua("udp", tuned, user="carol")
    laptop = ua("tcp", tuned, user="carol")
    etag = publish(phone, pidf("sip:carol@localhost")).header("SIP-ETag")
    next_notify(bob)
    before = snapshot(tuned)

    reply = publish(laptop, pidf("sip:carol@localhost", "laptop"))

    assert reply.status == 503, reply.text
    assert int(reply.header("Retry-After")) > 0
    assert snapshot(tuned) == before
    assert_silent(bob, 0.2)
    # The device already counted may still refresh, modify and re-PUBLISH.
    etag = publish(phone, etag=etag).header("SIP-ETag")
    assert publish(phone, pidf("sip:carol@localhost", note="x"), etag=etag).status == 200
    assert publish(phone, pidf("sip:carol@localhost", note="y")).status == 200
    assert len(publications(tuned, "sip:carol@localhost")) == 1
