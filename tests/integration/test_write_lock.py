"""While another connection holds SQLite's write lock (a long admin action, a VACUUM,
`manage.py sipuser` mid-transaction), the embedded server keeps serving: SIP requests
that need the database wait for the lock, and once it is released they are stored and
answered."""

import json
import sqlite3
import urllib.request

import pytest

from tests.conftest import USERS
from tests.presence import PIDF_TYPE, pidf
from tests.serverproc import provision
from tests.sipclient import SipClient

ALICE = "sip:alice@localhost"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Trusted: the PUBLISH needs no challenge round trip, so it is one request.
    proc = provision(tmp_path_factory.mktemp("lock"), USERS, SIP_TRUSTED_PEERS="127.0.0.1")
    proc.start()
    yield proc
    proc.stop()


def test_the_server_serves_while_another_connection_holds_the_write_lock(server):
    alice = SipClient("udp", server, user="alice")
    holder = sqlite3.connect(server.data_dir / "db.sqlite3", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long admin action holds it
        headers = ["Event: presence", f"Content-Type: {PIDF_TYPE}"]
        request = alice.request(
            "PUBLISH", uri=ALICE, to=ALICE, expires=600, headers=headers, body=pidf(ALICE)
        )
        alice.send_raw(request)
        # The PUBLISH's job waits for the lock; the loop must still answer HTTP. Had it
        # waited on the loop's thread, this would wait for the release, which comes only
        # after the answer: the request would time out.
        with urllib.request.urlopen(f"{server.http_url}/healthz", timeout=10) as answer:
            assert answer.status == 200
            assert json.load(answer) == {"database": "ok", "channel_layer": "ok"}
        early = alice.try_recv(0.3)
        assert early is None or early.status < 200, early.text  # nothing stored, no 200
        assert server.rows("SELECT COUNT(*) FROM sipws_presentity") == [(0,)]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    reply = alice.recv()
    while reply.status < 200:
        reply = alice.recv()
    assert reply.status == 200, reply.text
    etag = reply.header("SIP-ETag")
    assert server.rows("SELECT etag FROM sipws_presentity WHERE uri = ?", (ALICE,)) == [(etag,)]
    alice.close()
