"""Expiry with two sipworkers sharing the SIP ports: every sweep runs in both, and each
expired subscription and publication is notified exactly once, counted at the watchers."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.cluster.nodes import ROOT
from tests.presence import NotifyCollector, cseq, pidf, publish, state, tuples, watch
from tests.sipclient import SipClient

WORKERS = 2


def aor(user: str) -> str:
    return f"sip:{user}@localhost"


def test_both_workers_are_live_nodes(cluster):
    kinds = cluster.rows("SELECT kind FROM sipws_nodelease WHERE expires > now() ORDER BY kind")
    assert kinds == [("daphne",), ("daphne",), ("worker",), ("worker",)]


def test_each_expiry_is_notified_exactly_once(cluster):
    a, b = cluster.nodes
    short = [SipClient("udp", a, user=name) for name in ("grace", "heidi", "ivan", "judy")]
    short += [SipClient("ws", a, user="mallory"), SipClient("ws", b, user="niaj")]
    long = [SipClient("udp", b, user="olivia"), SipClient("ws", b, user="rupert")]
    # Short subscriptions end in 2 s; the publication lives 4 s, watched by long ones.
    collectors = {}
    for client in short + long:
        watch(client, aor("peggy"), expires=2 if client in short else 600)
        collectors[client.user] = NotifyCollector(client)
    presentity = SipClient("udp", a, user="peggy")
    assert publish(presentity, pidf(aor("peggy"), note="here"), expires=4).status == 200
    started = time.monotonic()
    # Both workers sweep every second: by 6.5 s after the PUBLISH everything is due and
    # swept, and a second notice would have had two more sweeps to show up.
    time.sleep(max(0.0, 6.5 - (time.monotonic() - started)))

    for client in short + long:
        notifies = collectors[client.user].stop()
        cseqs = [cseq(n) for n in notifies]
        assert len(cseqs) == len(set(cseqs)), f"{client.user} got a NOTIFY twice: {cseqs}"
        states = [(state(n)[0], state(n)[1].get("reason")) for n in notifies]
        if client in short:
            # The state, then the end of the subscription: once.
            assert states == [("active", None), ("terminated", "timeout")], client.user
        else:
            # The state, then the neutral state once the publication expired: once.
            assert states == [("active", None), ("active", None)], client.user
            assert tuples(notifies[0].body) == [("t1", "open", "here")]
            assert notifies[1].body == ""
    assert not cluster.rows(
        "SELECT 1 FROM sipws_activewatcher WHERE watcher_uri = ANY(%s)",
        ([aor(c.user) for c in short],),
    )
    for client in [*short, *long, presentity]:
        client.close()


SWEEP = """
import json, os, time
from datetime import UTC, datetime, timedelta
from sipws import runtime
from sipws.services.expiry import expire_now
start = float(os.environ["SWEEP_AT"])
server = runtime.get_server()
time.sleep(max(0.0, start - time.time()))
later = datetime.now(UTC) + timedelta(hours=2)
print(json.dumps([[item.watcher_id, item.final] for item in expire_now(server, later)]))
"""
MANY = """
from datetime import UTC, datetime, timedelta
from sipws.models import ActiveWatcher
now = datetime.now(UTC)
ActiveWatcher.objects.bulk_create(
    ActiveWatcher(
        presentity_uri=f"sip:p{i % 7}@localhost", watcher_uri=f"sip:w{i}@localhost",
        event="presence", call_id=f"many-{i}", from_tag="f", to_tag="t", remote_cseq=1,
        contact="sip:w@127.0.0.1:9", flow="udp|127.0.0.1|9|", expires=now + timedelta(hours=1),
        status="active",
    )
    for i in range(60)
)
"""


def test_two_sweeps_at_the_same_instant_end_each_subscription_once(cluster):
    def manage(*args, **env):
        env = cluster._env("sweeps", **env)
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    made = manage("shell", "-c", MANY)
    assert made.wait(60) == 0, made.stderr.read()
    due = {row[0] for row in cluster.rows("SELECT id FROM sipws_activewatcher")}
    assert len(due) >= 60
    # Both sweep two hours ahead (every subscription is due then, none for the workers).
    start = time.time() + 4
    sweeps = [manage("shell", "-c", SWEEP, SWEEP_AT=str(start)) for _ in range(2)]
    ended = []
    for sweep in sweeps:
        out, err = sweep.communicate(timeout=60)
        assert sweep.returncode == 0, err
        ended += [watcher for watcher, final in json.loads(out.strip().splitlines()[-1]) if final]
    assert sorted(ended) == sorted(due)
