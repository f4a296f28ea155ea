"""Presence end to end over real sockets: publishers and watchers on different transports,
and watchers that fail (RFC 6665 §4.2.2, RFC 3261 §17.1.2): a NOTIFY answered 404, 408 or
481, a UDP watcher that does not answer, a WebSocket or TCP watcher that goes away.

One dead watcher must end only its own subscription and never hold up the others.
"""

import pytest

from tests.presence import (
    NotifyCollector,
    assert_silent,
    branch,
    cseq,
    drain,
    next_notify,
    pidf,
    publish,
    subscribe,
    subscriptions,
    tuples,
    watch,
)
from tests.sipclient import Reply

ALICE = "sip:alice@localhost"


def rows_of(server, watcher: str) -> list[dict]:
    return subscriptions(server, watcher, ALICE)


@pytest.mark.parametrize(
    ("publisher", "watcher"),
    [("udp", "ws"), ("ws", "udp"), ("tcp", "ws"), ("ws", "tcp"), ("udp", "tcp"), ("tcp", "udp")],
)
def test_state_crosses_transports(server, ua, publisher, watcher):
    bob = ua(watcher, server, user="bob")
    watch(bob)
    alice = ua(publisher, server, user="alice")

    etag = publish(alice, pidf(ALICE, note=f"from {publisher}")).header("SIP-ETag")
    notify = next_notify(bob)
    assert publish(alice, pidf(ALICE, "t1", "closed", "later"), etag=etag).status == 200
    later = next_notify(bob)

    assert notify.start == f"NOTIFY {bob.contact_uri()} SIP/2.0"
    assert notify.header("Via").startswith(f"SIP/2.0/{watcher.upper()} ")
    assert tuples(notify.body) == [("t1", "open", f"from {publisher}")]
    assert tuples(later.body) == [("t1", "closed", "later")]
    assert cseq(later) == cseq(notify) + 1


@pytest.mark.parametrize("status", [404, 408, 481])
def test_a_notify_answered_with_an_error_ends_that_subscription_only(server, ua, status):
    bob = ua("udp", server, user="bob")
    carol = ua("udp", server, user="carol")
    watch(bob)
    watch(carol)
    alice = ua("udp", server, user="alice")
    etag = publish(alice, pidf(ALICE, note="one")).header("SIP-ETag")

    next_notify(bob, status=status)
    next_notify(carol)

    assert server.wait_for(lambda: rows_of(server, "sip:bob@localhost") == [])
    assert len(rows_of(server, "sip:carol@localhost")) == 1
    assert publish(alice, pidf(ALICE, note="two"), etag=etag).status == 200
    assert tuples(next_notify(carol).body) == [("t1", "open", "two")]
    assert_silent(bob)


def copies_by_cseq(collector: NotifyCollector) -> dict[int, list[tuple[float, Reply]]]:
    copies: dict[int, list] = {}
    for arrival, message in collector.arrivals:
        copies.setdefault(cseq(message), []).append((arrival, message))
    return copies


def test_an_unanswered_notify_is_retransmitted_and_holds_up_nobody(server, ua):
    """Timer E over UDP (RFC 3261 §17.1.2.2): copies of the very same NOTIFY at T1, 3*T1,
    ... until answered. Timer F (64*T1 = 32 s) ending the subscription is left to the
    unit tests."""
    carol = ua("ws", server, user="carol")
    watch(carol)
    bob = ua("udp", server, user="bob")
    assert subscribe(bob).status == 200
    silent_bob = NotifyCollector(bob, answer=False)
    try:
        # Bob does not answer; alice's change still reaches carol at once.
        alice = ua("udp", server, user="alice")
        assert publish(alice, pidf(ALICE, note="meanwhile")).status == 200
        assert tuples(next_notify(carol).body) == [("t1", "open", "meanwhile")]
        silent_bob.wait(
            until=lambda _: (
                [len(c) >= 2 for c in copies_by_cseq(silent_bob).values()] == [True, True]
            )
        )
    finally:
        silent_bob.stop()

    copies = copies_by_cseq(silent_bob)
    initial, changed = sorted(copies)
    assert changed == initial + 1
    for number in (initial, changed):
        (sent_at, message), (again_at, again) = copies[number][:2]
        assert message.method == "NOTIFY" and again.text == message.text
        assert branch(again) == branch(message)
        assert 0.3 < again_at - sent_at < 1.2  # T1 = 500 ms
    assert tuples(copies[changed][0][1].body) == [("t1", "open", "meanwhile")]

    # Bob answers both transactions: their retransmissions stop (the next were due at 3*T1).
    bob.answer(copies[initial][0][1])
    bob.answer(copies[changed][0][1])
    drain(bob, 0.1)  # copies already on their way
    assert_silent(bob, 1.3)
    assert len(rows_of(server, "sip:bob@localhost")) == 1


def test_a_closed_websocket_ends_its_subscriptions(server, ua):
    bob = ua("ws", server, user="bob")
    watch(bob)
    carol = ua("udp", server, user="carol")
    watch(carol)
    assert len(rows_of(server, "sip:bob@localhost")) == 1

    bob.close()

    assert server.wait_for(lambda: rows_of(server, "sip:bob@localhost") == [])
    alice = ua("tcp", server, user="alice")
    assert publish(alice, pidf(ALICE, note="still here")).status == 200
    assert tuples(next_notify(carol).body) == [("t1", "open", "still here")]
    assert len(rows_of(server, "sip:carol@localhost")) == 1


def test_a_watcher_whose_tcp_connection_is_gone_loses_its_subscription(server, ua):
    bob = ua("tcp", server, user="bob")
    watch(bob)
    carol = ua("ws", server, user="carol")
    watch(carol)

    bob.close()
    alice = ua("udp", server, user="alice")
    assert publish(alice, pidf(ALICE, note="who is there")).status == 200

    assert tuples(next_notify(carol).body) == [("t1", "open", "who is there")]
    assert server.wait_for(lambda: rows_of(server, "sip:bob@localhost") == [])
    assert len(rows_of(server, "sip:carol@localhost")) == 1
