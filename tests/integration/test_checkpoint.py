"""What the embedded server commits reaches the SQLite database file within seconds,
copied from the write-ahead log by a thread of its own (services/checkpoint): the
event loop's connection never checkpoints, since that writes and syncs the file on the
loop."""

import sqlite3
import time

import pytest

from tests.conftest import USERS
from tests.presence import PIDF_TYPE, pidf
from tests.serverproc import provision
from tests.sipclient import SipClient

ALICE = "sip:alice@localhost"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = provision(tmp_path_factory.mktemp("checkpoint"), USERS, SIP_TRUSTED_PEERS="127.0.0.1")
    proc.start()
    yield proc
    proc.stop()


def _in_database_file(server) -> list:
    """The publications the database file itself holds, ignoring the write-ahead log."""
    path = server.data_dir / "db.sqlite3"
    reader = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return reader.execute("SELECT etag FROM sipws_presentity").fetchall()
    finally:
        reader.close()


def test_committed_publications_reach_the_database_file(server):
    alice = SipClient("udp", server, user="alice")
    headers = ["Event: presence", f"Content-Type: {PIDF_TYPE}"]
    reply = alice.send(
        "PUBLISH", uri=ALICE, to=ALICE, expires=600, headers=headers, body=pidf(ALICE)
    )
    assert reply.status == 200, reply.text
    etag = reply.header("SIP-ETag")
    assert server.rows("SELECT etag FROM sipws_presentity") == [(etag,)]
    deadline = time.monotonic() + 10
    while (etag,) not in _in_database_file(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _in_database_file(server) == [(etag,)]
    alice.close()
