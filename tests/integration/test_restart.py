"""Durability: SIGKILL the server while it holds publications and subscriptions, start it
again on the same database, and nothing a UDP watcher relies on is lost (issue 3, item 7).

The restarted server binds new ports (port 0); a UDP watcher is reached at its own
address, which did not change. WebSocket flows cannot survive: their subscriptions are
dropped at start-up.
"""

import signal
import socket
import time

from tests.conftest import USERS
from tests.presence import (
    assert_silent,
    cseq,
    next_notify,
    pidf,
    publications,
    publish,
    state,
    subscriptions,
    tuples,
    watch,
)
from tests.serverproc import provision
from tests.sipclient import SipClient

ALICE = "sip:alice@localhost"


def test_state_survives_sigkill_and_sigterm_is_clean(tmp_path):
    server = provision(
        tmp_path, USERS, PRESENCE_SUBSCRIBE_MIN_EXPIRES="1", PRESENCE_PUBLISH_MIN_EXPIRES="1"
    ).start()
    clients = []

    def client(transport, user, **kwargs):
        clients.append(SipClient(transport, server, user=user, **kwargs))
        return clients[-1]

    try:
        bob = client("udp", "bob")  # a phone: keeps its socket across the server's restart
        carol = client("ws", "carol")  # a browser: its flow dies with the server
        dave = client("udp", "dave", domain="example.com")  # a subscription about to expire
        tcp_watcher = client("tcp", "bob")
        alice = client("udp", "alice")
        watch(bob)
        watch(carol)
        watch(tcp_watcher)
        etag = publish(alice, pidf(ALICE, note="before")).header("SIP-ETag")
        last = next_notify(bob)
        next_notify(carol)
        next_notify(tcp_watcher)
        _, dave_first = watch(dave, "sip:bob@localhost", expires=3)
        stored = publications(server)

        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        server.start()

        assert publications(server) == stored
        assert subscriptions(server, "sip:carol@localhost") == []  # WebSocket: gone
        # UDP and TCP subscriptions are kept.
        [bob_row, tcp_row] = subscriptions(server, "sip:bob@localhost")
        assert (bob_row["call_id"], tcp_row["call_id"]) == (bob.call_id, tcp_watcher.call_id)
        assert bob_row["local_cseq"] == cseq(last)

        # The ETag from before the kill still modifies the publication.
        reply = publish(alice, pidf(ALICE, "t1", "closed", "after"), etag=etag)
        assert reply.status == 200, reply.text
        [row] = publications(server)
        assert row["etag"] == reply.header("SIP-ETag") != etag

        notify = next_notify(bob)  # answered 200: accepted by the new process
        assert cseq(notify) > cseq(last)
        assert tuples(notify.body) == [("t1", "closed", "after")]
        assert f":{server.udp_port};" in notify.header("Via")

        # Expiry timers resume: dave's 3-second subscription ends on time.
        final = next_notify(dave, timeout=6)
        assert state(final) == ("terminated", {"reason": "timeout"})
        assert cseq(final) > cseq(dave_first)
        assert server.wait_for(lambda: subscriptions(server, "sip:dave@example.com") == [])

        assert_silent(bob, 0.3)  # the 200 ended the NOTIFY transaction: no retransmission
        [bob_row] = [r for r in subscriptions(server) if r["call_id"] == bob.call_id]
        assert bob_row["local_cseq"] == cseq(notify)

        # SIGTERM with a NOTIFY transaction still open (bob does not answer this one):
        # the process does not wait for Timer F.
        etag = reply.header("SIP-ETag")
        assert publish(alice, pidf(ALICE, note="last"), etag=etag).status == 200
        next_notify(bob, status=None)
        started = time.monotonic()
        assert server.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 5
    finally:
        server.stop(signal.SIGKILL)
        for each in clients:
            each.close()


def test_a_tcp_watcher_is_dialled_back_at_its_contact_after_a_restart(tmp_path):
    """Its connection died with the server; RFC 3261 §18.1.1 lets us open a new one."""
    server = provision(tmp_path, USERS).start()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    contact = f"<sip:bob@127.0.0.1:{listener.getsockname()[1]};transport=tcp>"
    bob = SipClient("tcp", server, user="bob")
    alice = SipClient("udp", server, user="alice")
    try:
        _, first = watch(bob, contact=contact)
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        bob.close()
        server.start()

        assert publish(alice, pidf(ALICE, note="after the restart")).status == 200
        connection, _ = listener.accept()
        dialled = SipClient.on_accepted(connection, server, user="bob")
        notify = next_notify(dialled)
        assert cseq(notify) > cseq(first)
        assert tuples(notify.body) == [("t1", "open", "after the restart")]
        assert server.wait_for(lambda: subscriptions(server, "sip:bob@localhost") != [])
        connection.close()
    finally:
        server.stop(signal.SIGKILL)
        listener.close()
        alice.close()
