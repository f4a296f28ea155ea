"""Two Daphne nodes and a sipworker on PostgreSQL and Redis: whatever node handles a
change, every watcher hears of it, in commit order, and every answer reaches the process
that sent the request (its Via branch names it)."""

from __future__ import annotations

import json
import re
import threading

from tests.cluster.conftest import TOKEN
from tests.presence import (
    NotifyCollector,
    assert_silent,
    cseq,
    next_notify,
    pidf,
    publish,
    state,
    tuples,
    watch,
)
from tests.sipclient import SipClient

# Small enough for a test to pass it with one PUBLISH; far above every other message here.
ENV = {"SIP_LAYER_MAX_MESSAGE_SIZE": "6000"}


def aor(user: str) -> str:
    return f"sip:{user}@localhost"


def subscribed(cluster, watcher: str) -> bool:
    return bool(
        cluster.rows("SELECT 1 FROM sipws_activewatcher WHERE watcher_uri = %s", (aor(watcher),))
    )


def registered(client: SipClient) -> SipClient:
    assert client.send_authenticated("REGISTER", expires=600).status == 200
    return client


def message(sender: SipClient, recipient: SipClient) -> tuple[int, str]:
    """A MESSAGE relayed from `sender` to `recipient`, which answers 200: (final status, body
    as received)."""
    got = {}

    def answer():
        request = recipient.recv(5)
        got["body"] = request.body
        recipient.answer(request, 200)

    thread = threading.Thread(target=answer)
    thread.start()
    reply = sender.send_authenticated(
        "MESSAGE",
        uri=recipient.aor,
        to=recipient.aor,
        body=f"hello {recipient.user}",
        headers=["Content-Type: text/plain"],
    )
    thread.join(6)
    return reply.status, got.get("body", "")


def test_a_publish_on_one_node_notifies_a_watcher_on_the_other(cluster):
    a, b = cluster.nodes
    watcher, publisher = SipClient("ws", a, user="bob"), SipClient("ws", b, user="alice")
    _, first = watch(watcher, aor("alice"))

    assert publish(publisher, pidf(aor("alice"), note="from node B")).status == 200
    notify = next_notify(watcher, status=None)

    assert tuples(notify.body) == [("t1", "open", "from node B")]
    assert cseq(notify) == cseq(first) + 1
    # Node B sent the NOTIFY; the answer arrives at node A. B's transaction gets it at
    # once (not after Timer F's 32 s) and ends the subscription on 481 (RFC 6665).
    watcher.answer(notify, 481, "Call/Transaction Does Not Exist")
    assert cluster.wait_for(lambda: not subscribed(cluster, "bob"), timeout=3)
    watcher.close()
    publisher.close()


def test_an_mwi_call_on_one_node_notifies_a_watcher_on_the_other(cluster):
    a, b = cluster.nodes
    watcher = SipClient("ws", a, user="carol")
    _, first = watch(watcher, aor("carol"), event="message-summary")
    assert first.body.startswith("Messages-Waiting: no")

    status, _ = b.call(
        "PUT",
        "/api/mwi/carol@localhost/",
        json.dumps({"messages_waiting": True, "voice": {"new": 2, "old": 1}}),
        {"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"},
    )
    assert status == 200
    notify = next_notify(watcher)

    assert notify.body.startswith("Messages-Waiting: yes")
    assert "Voice-Message: 2/1" in notify.body
    assert cseq(notify) == cseq(first) + 1
    watcher.close()


def test_udp_phones_and_websocket_users_reach_each_other(cluster):
    a, b = cluster.nodes
    phone = registered(SipClient("udp", a, user="dave"))
    web = registered(SipClient("ws", b, user="erin"))
    other_web = registered(SipClient("ws", a, user="frank"))

    # The phone watches the web user: node B's NOTIFY goes out through the worker, and the
    # phone's 200 (which reaches the worker) goes back to node B's transaction.
    watch(phone, aor("erin"))
    assert publish(web, pidf(aor("erin"), note="busy")).status == 200
    assert tuples(next_notify(phone).body) == [("t1", "open", "busy")]
    assert_silent(phone, 1.2)  # no retransmission: the 200 ended B's transaction (T1 0.5 s)

    # The web user watches the phone: the worker's NOTIFY goes to the consumer on node B,
    # and its 481 (which reaches node B) goes back to the worker's transaction.
    watch(web, aor("dave"))
    assert publish(phone, pidf(aor("dave"), note="on a call")).status == 200
    notify = next_notify(web, status=None)
    assert tuples(notify.body) == [("t1", "open", "on a call")]
    web.answer(notify, 481, "Call/Transaction Does Not Exist")
    assert cluster.wait_for(lambda: not subscribed(cluster, "erin"), timeout=3)

    # MESSAGE, relayed by the process the sender reached; the answer finds its way back.
    assert message(phone, web) == (200, "hello erin")
    assert message(web, phone) == (200, "hello dave")
    assert message(other_web, web) == (200, "hello erin")
    for client in (phone, web, other_web):
        client.close()


def test_updates_of_one_presentity_keep_their_order_across_nodes(cluster):
    a, b = cluster.nodes
    on_a, on_b = SipClient("ws", a, user="grace"), SipClient("ws", b, user="grace")
    on_ws, on_udp = SipClient("ws", a, user="heidi"), SipClient("udp", b, user="ivan")
    firsts = [watch(client, aor("grace"))[1] for client in (on_ws, on_udp)]
    collectors = [NotifyCollector(client) for client in (on_ws, on_udp)]
    rounds = 12

    def publish_from(client: SipClient, label: str) -> None:
        for number in range(rounds):
            body = pidf(aor("grace"), tuple_id=label, note=f"{label}{number}")
            assert publish(client, body).status == 200

    threads = [
        threading.Thread(target=publish_from, args=(on_a, "a")),
        threading.Thread(target=publish_from, args=(on_b, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    for first, collector in zip(firsts, collectors, strict=True):
        notifies = collector.wait(2 * rounds, timeout=10)
        collector.stop()
        assert len(notifies) == 2 * rounds, [n.body for n in notifies]
        # Sent in CSeq order, one CSeq each, whichever node committed the change...
        assert [cseq(n) for n in notifies] == list(
            range(cseq(first) + 1, cseq(first) + 1 + 2 * rounds)
        )
        # ... and each carries the state of every commit before it: no publisher's
        # note ever goes back.
        seen = {"a": -1, "b": -1}
        for notify in notifies:
            for tuple_id, _, note in tuples(notify.body):
                number = int(note[1:])
                assert number >= seen[tuple_id], [n.body for n in notifies]
                seen[tuple_id] = number
        assert seen == {"a": rounds - 1, "b": rounds - 1}
    for client in (on_a, on_b, on_ws, on_udp):
        client.close()


def test_a_message_too_large_for_the_channel_layer_is_refused_and_counted(cluster):
    a, b = cluster.nodes
    watcher, publisher = SipClient("ws", a, user="judy"), SipClient("ws", b, user="mallory")
    watch(watcher, aor("mallory"))
    before = b.metric("sip_channel_layer_send_failures_total", reason="too_large")

    # The NOTIFY for node A's watcher would be over SIP_LAYER_MAX_MESSAGE_SIZE (6000).
    big = pidf(aor("mallory"), note="x" * 7000)
    assert publish(publisher, big).status == 200

    assert watcher.try_recv(1.0) is None
    assert b.metric("sip_channel_layer_send_failures_total", reason="too_large") == before + 1
    assert re.search(r"message of \d+ bytes refused for specific\.", "".join(b.output))
    # The watcher that cannot be told loses its subscription (as for a dead flow); the
    # node goes on serving.
    assert cluster.wait_for(lambda: not subscribed(cluster, "judy"), timeout=3)
    assert b.get("/healthz")[0] == 200
    assert publish(publisher, pidf(aor("mallory"), note="small")).status == 200
    assert state(watch(watcher, aor("mallory"))[1])[0] == "active"
    watcher.close()
    publisher.close()
