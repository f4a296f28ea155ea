"""Node leases and restarts: a Daphne node killed with kill -9 takes only its own WebSocket
flows with it, ended by a surviving node once its lease runs out; a worker restarted
loses nothing."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from tests.presence import NotifyCollector, cseq, next_notify, pidf, publish, tuples, watch
from tests.sipclient import SipClient


def aor(user: str) -> str:
    return f"sip:{user}@localhost"


def registered(client: SipClient) -> SipClient:
    assert client.send_authenticated("REGISTER", expires=600).status == 200
    return client


def test_a_killed_node_loses_its_flows_and_every_other_watcher_keeps_its_notifies(cluster):
    a = cluster.nodes[0]
    victim = cluster.start_node()
    doomed = registered(SipClient("ws", victim, user="alice"))
    survivor = SipClient("ws", a, user="carol")
    phone = registered(SipClient("udp", a, user="dave"))
    presentity = SipClient("ws", a, user="bob")
    for watcher in (doomed, survivor, phone):
        watch(watcher, aor("bob"))
    [[victim_id]] = cluster.rows(
        "SELECT node FROM sipws_activewatcher WHERE watcher_uri = %s", (aor("alice"),)
    )
    assert cluster.rows("SELECT 1 FROM sipws_nodelease WHERE node = %s", (victim_id,))

    victim.kill()

    def reaped():
        return not cluster.rows(
            "SELECT 1 FROM sipws_activewatcher WHERE node = %s "
            "UNION ALL SELECT 1 FROM sipws_registration WHERE node = %s "
            "UNION ALL SELECT 1 FROM sipws_nodelease WHERE node = %s",
            (victim_id, victim_id, victim_id),
        )

    # The lease is 3 s, renewed every 0.5 s: a live node notices within about 3.5 s.
    assert cluster.wait_for(reaped, timeout=10), cluster.logs()
    assert publish(presentity, pidf(aor("bob"), note="still here")).status == 200
    for watcher in (survivor, phone):
        assert tuples(next_notify(watcher).body) == [("t1", "open", "still here")]
    watchers = {row[0] for row in cluster.rows("SELECT watcher_uri FROM sipws_activewatcher")}
    assert {aor("carol"), aor("dave")} <= watchers and aor("alice") not in watchers
    assert cluster.rows("SELECT 1 FROM sipws_registration WHERE aor = %s", (aor("dave"),))
    for client in (survivor, phone, presentity):
        client.close()


def test_restarting_the_worker_loses_nothing(cluster):
    a, b = cluster.nodes[:2]  # (the third was killed above)
    phone = registered(SipClient("udp", a, user="erin"))
    web = SipClient("ws", b, user="frank")
    assert publish(phone, pidf(aor("erin"), note="before")).status == 200
    _, web_first = watch(web, aor("erin"))
    _, phone_first = watch(phone, aor("frank"))
    assert tuples(web_first.body) == [("t1", "open", "before")]

    cluster.workers[0].stop()  # SIGTERM: its lease ends, it holds no WebSocket flow
    # While no worker runs, a change for the phone waits in the workers' channel.
    assert publish(web, pidf(aor("frank"), note="while down")).status == 200
    cluster.start_worker()  # on the same ports
    collector = NotifyCollector(phone)
    notifies = collector.wait(1, timeout=10)
    # Node B's transaction retransmitted into the channel meanwhile: copies of one
    # NOTIFY (one CSeq), all delivered once the worker came back.
    collector.wait(timeout=1.5, until=lambda messages: False)
    notifies = collector.stop()
    assert {cseq(n) for n in notifies} == {cseq(phone_first) + 1}
    assert tuples(notifies[0].body) == [("t1", "open", "while down")]

    # The phone's registration, publication and subscriptions are all there: it
    # publishes through the new worker and its watcher hears it with the next CSeq.
    assert publish(phone, pidf(aor("erin"), note="after")).status == 200
    notify = next_notify(web)
    assert tuples(notify.body) == [("t1", "open", "after")]
    assert cseq(notify) == cseq(web_first) + 1
    bindings = "SELECT transport FROM sipws_registration WHERE aor = %s"
    assert cluster.rows(bindings, (aor("erin"),)) == [("udp",)]
    phone.close()
    web.close()


def test_a_node_taken_for_dead_closes_its_connections_so_that_clients_come_back(cluster):
    a = cluster.nodes[0]
    client = registered(SipClient("ws", a, user="grace"))
    [[node]] = cluster.rows("SELECT node FROM sipws_registration WHERE aor = %s", (aor("grace"),))

    # What a reaping node does to a node that stalled for longer than its lease.
    cluster.rows("DELETE FROM sipws_nodelease WHERE node = %s RETURNING node", (node,))

    with pytest.raises(ConnectionClosed):
        client.ws.recv(timeout=5)
    assert cluster.wait_for(
        lambda: not cluster.rows("SELECT 1 FROM sipws_registration WHERE aor = %s", (aor("grace"),))
    )
    assert cluster.rows("SELECT 1 FROM sipws_nodelease WHERE node = %s", (node,))  # renewed
    again = registered(SipClient("ws", a, user="grace"))
    again.close()
