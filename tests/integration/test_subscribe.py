"""SUBSCRIBE over real sockets (RFC 6665 §4.2.1, RFC 3856): every answer the engine gives,
the immediate NOTIFY, refresh, unsubscribe, fetch, expiry and the per-user cap.

Bob watches alice. Each test checks what the watcher sees (status, headers, NOTIFYs) and
what the server stored (rows of sipws_activewatcher), and that a refused SUBSCRIBE changed
no row of the presence tables.
"""

import time
from datetime import UTC, datetime

import pytest

from tests.conftest import USERS
from tests.presence import (
    PIDF_TYPE,
    SIP_CONTACT,
    assert_silent,
    cseq,
    next_notify,
    pidf,
    publish,
    snapshot,
    state,
    subscribe,
    subscriptions,
    tag,
    tuples,
    unsubscribe,
    watch,
)
from tests.serverproc import provision

ALICE = "sip:alice@localhost"
TRANSPORTS = ["udp", "tcp", "ws"]


def seconds_left(row: dict) -> float:
    expires = datetime.fromisoformat(row["expires"]).replace(tzinfo=UTC)
    return (expires - datetime.now(UTC)).total_seconds()


def assert_server_contact(server, value: str, transport: str) -> None:
    """A Contact a browser library can parse: a SIP URI of this server."""
    match = SIP_CONTACT.match(value)
    assert match, value
    assert match.group(1) == "127.0.0.1", value
    if transport == "udp":
        assert match.group(2) == str(server.udp_port), value
    assert f"transport={transport}" in match.group(3), value


def assert_refused(server, client, before, status: int, **kwargs):
    reply = subscribe(client, **kwargs)
    assert reply.status == status, reply.text
    assert_silent(client, 0.2)  # no NOTIFY for a refused SUBSCRIBE
    assert snapshot(server) == before
    return reply


# Accepted subscriptions ----------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_subscribe_is_answered_200_then_notified(server, ua, transport):
    bob = ua(transport, server, user="bob")

    reply = subscribe(bob, expires=600, headers=[f"Accept: {PIDF_TYPE}"])

    assert reply.status == 200, reply.text
    assert reply.header("Expires") == "600"
    assert_server_contact(server, reply.header("Contact"), transport)
    to_tag = tag(reply.header("To"))
    assert to_tag
    [row] = subscriptions(server, "sip:bob@localhost")
    assert (row["presentity_uri"], row["event"], row["status"]) == (ALICE, "presence", "active")
    assert (row["call_id"], row["from_tag"], row["to_tag"]) == (bob.call_id, bob.tag, to_tag)
    assert row["contact"] == bob.contact_uri()
    assert 590 < seconds_left(row) <= 600

    notify = next_notify(bob)  # read after the 200: the NOTIFY follows the response
    assert notify.start == f"NOTIFY {bob.contact_uri()} SIP/2.0"
    value, params = state(notify)
    assert value == "active" and 595 <= int(params["expires"]) <= 600
    assert notify.header("Event") == "presence"
    assert notify.header("Call-ID") == bob.call_id
    assert tag(notify.header("From")) == to_tag and tag(notify.header("To")) == bob.tag
    assert notify.header("CSeq").endswith(" NOTIFY")
    assert_server_contact(server, notify.header("Contact"), transport)
    # Nothing published and PRESENCE_NEUTRAL_BODY=none: a NOTIFY without body (Kamailio).
    assert notify.body == "" and notify.header("Content-Type") is None
    assert notify.header("Content-Length") == "0"


def test_expires_is_capped_at_the_maximum(server, ua):
    bob = ua("udp", server, user="bob")

    reply, notify = watch(bob, expires=99999)

    assert reply.header("Expires") == "3600"
    assert 3595 <= int(state(notify)[1]["expires"]) <= 3600
    [row] = subscriptions(server, "sip:bob@localhost")
    assert 3590 < seconds_left(row) <= 3600


def test_event_id_is_kept_and_echoed(server, ua):
    bob = ua("udp", server, user="bob")

    _, notify = watch(bob, event="presence;id=abc")

    assert notify.header("Event") == "presence;id=abc"
    [row] = subscriptions(server, "sip:bob@localhost")
    assert row["event_id"] == "abc"


def test_refresh_in_dialog(server, ua):
    bob = ua("tcp", server, user="bob")
    created, first = watch(bob, expires=600)
    [before] = subscriptions(server, "sip:bob@localhost")

    reply = subscribe(bob, expires=300, to_tag=tag(created.header("To")))

    assert reply.status == 200, reply.text
    assert reply.header("Expires") == "300"
    assert tag(reply.header("To")) == tag(created.header("To"))
    notify = next_notify(bob)
    assert cseq(notify) == cseq(first) + 1
    assert 295 <= int(state(notify)[1]["expires"]) <= 300
    [row] = subscriptions(server, "sip:bob@localhost")
    assert row["id"] == before["id"]
    assert row["remote_cseq"] == bob.cseq > before["remote_cseq"]
    assert 290 < seconds_left(row) <= 300


def test_unsubscribe_sends_the_final_notify_and_forgets_the_dialog(server, ua):
    bob = ua("ws", server, user="bob")
    created, first = watch(bob)

    reply, notify = unsubscribe(bob, created)

    assert reply.status == 200, reply.text
    assert reply.header("Expires") == "0"
    assert state(notify) == ("terminated", {"reason": "timeout"})
    assert cseq(notify) == cseq(first) + 1
    assert subscriptions(server, "sip:bob@localhost") == []
    assert_silent(bob)


def test_fetch_gets_one_final_notify_and_keeps_no_dialog(server, ua):
    alice = ua("udp", server, user="alice")
    assert publish(alice, pidf(ALICE, note="fetched")).status == 200
    bob = ua("udp", server, user="bob")

    reply = subscribe(bob, expires=0)

    assert reply.status == 200, reply.text
    assert reply.header("Expires") == "0"
    notify = next_notify(bob)
    assert state(notify) == ("terminated", {"reason": "timeout"})
    assert tuples(notify.body) == [("t1", "open", "fetched")]
    assert subscriptions(server, "sip:bob@localhost") == []
    assert_silent(bob)


def test_subscriptions_with_different_event_ids_are_kept_apart(server, ua):
    bob = ua("udp", server, user="bob")
    first, _ = watch(bob, event="presence;id=a")
    second, _ = watch(bob, event="presence;id=b")  # same Call-ID and From tag
    assert tag(first.header("To")) != tag(second.header("To"))
    rows = subscriptions(server, "sip:bob@localhost")
    assert sorted(r["event_id"] for r in rows) == ["a", "b"]

    alice = ua("udp", server, user="alice")
    assert publish(alice, pidf(ALICE, note="both")).status == 200
    notifies = [next_notify(bob), next_notify(bob)]
    by_id = {n.header("Event"): n for n in notifies}
    assert set(by_id) == {"presence;id=a", "presence;id=b"}
    assert tag(by_id["presence;id=a"].header("From")) == tag(first.header("To"))
    assert tag(by_id["presence;id=b"].header("From")) == tag(second.header("To"))

    _, final = unsubscribe(bob, first, event="presence;id=a")
    assert final.header("Event") == "presence;id=a"
    assert state(final)[0] == "terminated"
    [row] = subscriptions(server, "sip:bob@localhost")
    assert row["event_id"] == "b"


# Refused subscriptions -----------------------------------------------------------------


@pytest.mark.parametrize("event", [None, "dialog-of-nothing"])
def test_unknown_or_missing_event_gets_489(server, ua, event):
    bob = ua("udp", server, user="bob")
    before = snapshot(server)

    reply = assert_refused(server, bob, before, 489, event=event)

    assert "presence" in [e.strip() for e in reply.header("Allow-Events").split(",")]


def test_too_short_expires_gets_423(server, ua):
    bob = ua("udp", server, user="bob")

    reply = assert_refused(server, bob, snapshot(server), 423, expires=30)

    assert reply.header("Min-Expires") == "60"


def test_unacceptable_accept_gets_406(server, ua):
    bob = ua("udp", server, user="bob")

    reply = assert_refused(
        server, bob, snapshot(server), 406, headers=["Accept: text/plain, application/xml"]
    )

    assert reply.header("Accept") == PIDF_TYPE


@pytest.mark.parametrize("accept", ["application/*", "*/*", f"text/plain, {PIDF_TYPE}"])
def test_acceptable_accept_is_taken(server, ua, accept):
    bob = ua("udp", server, user="bob")

    reply, _ = watch(bob, headers=[f"Accept: {accept}"])

    assert reply.status == 200


@pytest.mark.parametrize("presentity", ["sip:nobody@localhost", "sip:alice@elsewhere.org"])
def test_unknown_presentity_gets_404(server, ua, presentity):
    bob = ua("udp", server, user="bob")

    assert_refused(server, bob, snapshot(server), 404, presentity=presentity)


def test_unknown_dialog_gets_481(server, ua):
    bob = ua("udp", server, user="bob")

    assert_refused(server, bob, snapshot(server), 481, to_tag="no-such-dialog")


def test_out_of_order_cseq_gets_500(server, ua):
    bob = ua("udp", server, user="bob")
    created, _ = watch(bob)
    before = snapshot(server)

    # Both the challenged and the authenticated request carry the CSeq already used.
    assert_refused(server, bob, before, 500, to_tag=tag(created.header("To")), cseq=bob.cseq)


def test_refresh_by_another_user_gets_403(server, ua):
    bob = ua("udp", server, user="bob")
    created, _ = watch(bob)
    carol = ua("udp", server, user="carol")
    carol.call_id, carol.tag = bob.call_id, bob.tag  # carol replays bob's dialog identifiers

    assert_refused(
        server, carol, snapshot(server), 403, to_tag=tag(created.header("To")), cseq=bob.cseq + 1
    )


def test_missing_contact_gets_400(server, ua):
    bob = ua("udp", server, user="bob")

    assert_refused(server, bob, snapshot(server), 400, contact=None)


def test_unauthenticated_subscribe_is_challenged(server, ua):
    bob = ua("udp", server, user="bob")
    before = snapshot(server)

    reply = bob.send("SUBSCRIBE", uri=ALICE, to=ALICE, expires=600, headers=["Event: presence"])

    assert reply.status in (401, 407)
    assert_silent(bob, 0.3)
    assert snapshot(server) == before


# Settings: 202, a closed neutral body, short expiry, the per-user cap -------------------


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    proc = provision(
        tmp_path_factory.mktemp("tuned"),
        USERS,
        PRESENCE_SUBSCRIBE_STATUS="202",
        PRESENCE_NEUTRAL_BODY="closed",
        PRESENCE_SUBSCRIBE_MIN_EXPIRES="1",
        PRESENCE_MAX_SUBSCRIPTIONS_PER_USER="2",
    )
    proc.start()
    yield proc
    proc.stop()


def test_subscribe_status_setting_and_closed_neutral_body(tuned, ua):
    bob = ua("ws", tuned, user="bob")

    reply = subscribe(bob)

    assert reply.status == 202, reply.text
    notify = next_notify(bob)
    assert state(notify)[0] == "active"
    assert notify.header("Content-Type") == PIDF_TYPE
    found = tuples(notify.body)
    assert found and all(basic == "closed" for _, basic, _ in found), notify.body
    assert f'entity="{ALICE}"' in notify.body


def test_subscription_expiry_sends_the_final_notify(tuned, ua):
    bob = ua("udp", tuned, user="bob")
    _, first = watch(bob, expires=2)
    assert int(state(first)[1]["expires"]) <= 2
    started = time.monotonic()

    final = next_notify(bob, timeout=5)

    assert state(final) == ("terminated", {"reason": "timeout"})
    assert cseq(final) == cseq(first) + 1
    assert 1 <= time.monotonic() - started < 4.5
    assert tuned.wait_for(lambda: subscriptions(tuned, "sip:bob@localhost") == [])


def test_subscriptions_over_the_per_user_cap_get_503(tuned, ua):
    dave = ua("udp", tuned, user="dave", domain="example.com")
    watch(dave, "sip:alice@localhost")
    watch(dave, "sip:bob@localhost")
    before = snapshot(tuned)

    reply = assert_refused(tuned, dave, before, 503, presentity="sip:carol@localhost")

    assert int(reply.header("Retry-After")) > 0
    assert len(subscriptions(tuned, "sip:dave@example.com")) == 2
