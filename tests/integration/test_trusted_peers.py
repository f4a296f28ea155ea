"""SIP_TRUSTED_PEERS (Kamailio's permissions module): requests from listed addresses skip
digest, the sender being the account its From names; everyone else is challenged.

The server trusts 127.0.0.1 only; a client bound to 127.0.0.2 (loopback too) is
untrusted.
"""

import socket

import pytest

from tests.conftest import USERS
from tests.presence import PIDF_TYPE, next_notify, pidf, publications, tuples, watch
from tests.serverproc import provision
from tests.sipclient import SipClient

ALICE = "sip:alice@localhost"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = provision(
        tmp_path_factory.mktemp("trusted"), USERS, SIP_TRUSTED_PEERS="127.0.0.1, 10.1.0.0/16"
    )
    proc.start()
    yield proc
    proc.stop()


def from_address(client: SipClient, host: str) -> SipClient:
    """The UDP client, sending from `host` instead."""
    client.sock.close()
    client.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.sock.bind((host, 0))
    client.sock.settimeout(client.timeout)
    client.local_port = client.sock.getsockname()[1]
    return client


def publish_plain(client: SipClient, note: str):
    """A PUBLISH without credentials."""
    return client.send(
        "PUBLISH",
        uri=ALICE,
        to=ALICE,
        expires=600,
        body=pidf(ALICE, note=note),
        headers=["Event: presence", f"Content-Type: {PIDF_TYPE}"],
    )


def test_a_trusted_peer_publishes_without_credentials(server, ua):
    trunk, bob = ua("udp", server, user="alice"), ua("ws", server, user="bob")
    watch(bob, ALICE)

    reply = publish_plain(trunk, "no password asked")

    assert reply.status == 200, reply.text
    assert reply.header("SIP-ETag")
    [row] = publications(server)
    assert row["publisher"] == ALICE  # the sender named in From
    assert tuples(next_notify(bob).body) == [("t1", "open", "no password asked")]


def test_a_trusted_peer_registers_and_subscribes_without_credentials(server, ua):
    trunk = ua("udp", server, user="carol")
    assert trunk.send("REGISTER", expires=600).status == 200
    reply = trunk.send("SUBSCRIBE", uri=ALICE, to=ALICE, expires=600, headers=["Event: presence"])
    assert reply.status == 200, reply.text
    next_notify(trunk)


def test_a_trusted_peer_still_names_a_known_sender(server, ua):
    trunk = ua("udp", server, user="mallory")  # no such account

    reply = publish_plain(trunk, "who am I")

    assert reply.status == 403
    assert "unknown sender" in reply.start


def test_an_untrusted_peer_is_challenged(server, ua):
    stranger = from_address(ua("udp", server, user="alice"), "127.0.0.2")

    assert publish_plain(stranger, "let me in").status == 401
    assert publications(server) == []
    # With the password it gets in, as anyone does.
    reply = stranger.send_authenticated(
        "PUBLISH",
        uri=ALICE,
        to=ALICE,
        expires=600,
        body=pidf(ALICE, note="with a password"),
        headers=["Event: presence", f"Content-Type: {PIDF_TYPE}"],
    )
    assert reply.status == 200
