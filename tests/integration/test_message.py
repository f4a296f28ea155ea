"""The MESSAGE relay (RFC 3428) as a stateful proxy (RFC 3261 §16), and offline storage
(Kamailio msilo), over real UDP, TCP and WebSocket sockets.

Each test starts with no registrations and no stored messages; recipients are test
clients that read the relayed MESSAGE and answer it as a phone or a browser would.
"""

import time
from email.utils import parsedate_to_datetime

import pytest

from tests.chat import message_args, relayed, send_message, start_message, vias
from tests.serverproc import provision
from tests.sipclient import SipClient, parse_challenges

USERS = [
    ("alice@localhost", "secret"),
    ("bob@localhost", "secret"),
    ("carol@localhost", "secret"),
    ("dave@example.com", "secret"),
]
TIMEOUT = "2"  # SIP_MESSAGE_TIMEOUT: a branch that never answers ends the relay quickly


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    proc = provision(tmp_path_factory.mktemp("relay"), USERS, SIP_MESSAGE_TIMEOUT=TIMEOUT)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def silo(tmp_path_factory):
    proc = provision(
        tmp_path_factory.mktemp("silo"),
        USERS,
        SIP_MESSAGE_TIMEOUT=TIMEOUT,
        SIP_OFFLINE_MESSAGES="1",
        SIP_OFFLINE_MAX_MESSAGES="3",
        SIP_OFFLINE_MAX_BYTES="3000",
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def clients():
    """clients(transport, server, user) makes a SIP client, closed after the test."""
    made = []

    def make(transport, server, user="alice", **kwargs):
        client = SipClient(transport, server, user=user, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def forget(server) -> None:
    """No registrations, no stored messages: each test starts from nothing."""
    server.rows("DELETE FROM sipws_registration")
    server.rows("DELETE FROM sipws_offlinemessage")


@pytest.fixture(autouse=True)
def clean(request):
    for name in ("relay", "silo"):
        if name in request.fixturenames:
            forget(request.getfixturevalue(name))


def registered(client: SipClient) -> SipClient:
    reply = client.send_authenticated("REGISTER", expires=600)
    assert reply.status == 200, reply.text
    return client


def stored(server) -> list[dict]:
    return server.records("SELECT * FROM sipws_offlinemessage ORDER BY id")


# Authentication and addressing ------------------------------------------------------------


def test_an_unauthenticated_message_gets_407_and_nothing_is_relayed(relay, clients):
    bob = registered(clients("udp", relay, "bob"))
    alice = clients("ws", relay)

    reply = alice.send("MESSAGE", **message_args("bob", "hi", "text/plain"))

    assert reply.status == 407
    challenges = parse_challenges(reply.text, "Proxy-Authenticate")
    assert [c["algorithm"] for c in challenges] == ["MD5", "SHA-256", "MD5"]
    assert challenges[0]["realm"] == "localhost"
    assert bob.try_recv(0.3) is None


def test_a_wrong_password_is_forbidden(relay, clients):
    bob = registered(clients("udp", relay, "bob"))
    alice = clients("udp", relay)

    reply = send_message(alice, "bob", password="wrong")

    assert reply.status == 403
    assert bob.try_recv(0.3) is None


def test_a_user_cannot_send_as_another(relay, clients):
    bob = registered(clients("udp", relay, "bob"))
    # From carol, with alice's own (valid) credentials.
    mallory = clients("udp", relay, "carol")

    reply = send_message(mallory, "bob", username="alice")

    assert reply.status == 403
    assert "not the authenticated user" in reply.start
    assert bob.try_recv(0.3) is None


@pytest.mark.parametrize(
    ("to", "status"),
    [
        ("sip:nobody@localhost", 404),
        ("sip:bob@elsewhere.example", 403),  # not an open relay
        ("sip:127.0.0.1", 404),
    ],
)
def test_a_recipient_we_do_not_serve(relay, clients, to, status):
    alice = clients("udp", relay)

    reply = send_message(alice, to)

    assert reply.status == status, reply.text


def test_a_user_without_registrations_is_temporarily_unavailable(relay, clients):
    alice = clients("ws", relay)

    reply = send_message(alice, "bob")

    assert reply.status == 480
    assert stored(relay) == []  # offline storage is off by default


def test_a_device_does_not_get_its_own_message_back(relay, clients):
    alice = registered(clients("ws", relay))

    reply = send_message(alice, "alice")

    assert reply.status == 480


# Relaying across transports ---------------------------------------------------------------


def test_websocket_user_messages_a_udp_phone(relay, clients):
    bob = registered(clients("udp", relay, "bob"))
    alice = clients("ws", relay)

    start_message(alice, "bob", "Hello Bob", content_type="text/plain;charset=UTF-8")
    message = relayed(bob)

    assert message.start == f"MESSAGE {bob.contact_uri()} SIP/2.0"  # Request-URI: the binding
    ours, theirs = vias(message)
    assert ours.startswith(f"SIP/2.0/UDP 127.0.0.1:{relay.udp_port};branch=z9hG4bK")
    assert theirs.startswith("SIP/2.0/WS ") and "received=127.0.0.1" in theirs
    assert message.header("Max-Forwards") == "69"
    assert message.header("Proxy-Authorization") is None  # our credentials stay with us
    assert message.header("From").startswith("<sip:alice@localhost>;tag=")
    assert message.header("To") == "<sip:bob@localhost>"
    assert message.header("Call-ID") == alice.call_id
    assert message.header("Content-Type") == "text/plain;charset=UTF-8"
    assert message.body == "Hello Bob"

    bob.answer(message, 200, "OK")
    reply = alice.recv()

    assert reply.status == 200
    assert vias(reply) == [theirs]  # our Via removed (RFC 3261 §16.7 step 3)
    assert reply.header("Call-ID") == alice.call_id


def test_udp_phone_answers_a_websocket_user(relay, clients):
    alice = registered(clients("ws", relay))
    bob = clients("udp", relay, "bob")

    start_message(bob, "alice", "Hi Alice")
    message = relayed(alice)

    assert message.start == f"MESSAGE {alice.contact_uri()} SIP/2.0"
    assert vias(message)[0].startswith("SIP/2.0/WS ")
    assert message.body == "Hi Alice"
    alice.answer(message, 202, "Accepted")
    assert bob.recv().status == 202


def test_tcp_recipient_and_a_body_larger_than_a_udp_datagram_should_be(relay, clients):
    bob = registered(clients("tcp", relay, "bob"))
    alice = clients("ws", relay)
    body = "x" * 5000  # RFC 3428 asks senders to stay under 1300 bytes on UDP: a SHOULD

    start_message(alice, "bob", body)
    message = relayed(bob)

    assert vias(message)[0].startswith("SIP/2.0/TCP ")
    assert message.body == body
    bob.answer(message)
    assert alice.recv().status == 200


def test_any_content_type_is_relayed_unchanged(relay, clients):
    bob = registered(clients("ws", relay, "bob"))
    alice = clients("tcp", relay)
    body = '<?xml version="1.0"?><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"/>'

    start_message(alice, "bob", body, content_type="application/im-iscomposing+xml")
    message = relayed(bob)

    assert message.header("Content-Type") == "application/im-iscomposing+xml"
    assert message.body == body
    bob.answer(message)
    assert alice.recv().status == 200


# Forking and the best response (RFC 3261 §16.7) -----------------------------------------


def test_two_registrations_both_get_it_and_the_first_2xx_wins(relay, clients):
    phone = registered(clients("udp", relay, "bob"))
    browser = registered(clients("ws", relay, "bob"))
    alice = clients("ws", relay)

    start_message(alice, "bob", "to both")
    on_phone, in_browser = relayed(phone), relayed(browser)

    assert on_phone.body == in_browser.body == "to both"
    branches = {vias(m)[0].split("branch=")[1].split(";")[0] for m in (on_phone, in_browser)}
    assert len(branches) == 2  # one branch per fork
    browser.answer(in_browser, 200)
    assert alice.recv().status == 200
    phone.answer(on_phone, 486, "Busy Here")
    assert alice.try_recv(0.3) is None  # nothing after the 2xx


@pytest.mark.parametrize(
    ("first", "second", "chosen"),
    [
        ((486, "Busy Here"), (415, "Unsupported Media Type"), 415),  # guides a resubmission
        ((500, "Server Internal Error"), (404, "Not Found"), 404),  # the lowest class
        ((503, "Service Unavailable"), (503, "Service Unavailable"), 500),  # never a 503
    ],
)
def test_without_a_2xx_the_best_final_response_is_chosen(relay, clients, first, second, chosen):
    phone = registered(clients("udp", relay, "bob"))
    browser = registered(clients("ws", relay, "bob"))
    alice = clients("udp", relay)

    start_message(alice, "bob")
    phone.answer(relayed(phone), *first)
    assert alice.try_recv(0.3) is None  # the other branch is still out
    browser.answer(relayed(browser), *second)

    assert alice.recv().status == chosen


def test_a_6xx_is_answered_at_once(relay, clients):
    phone = registered(clients("udp", relay, "bob"))
    browser = registered(clients("ws", relay, "bob"))
    alice = clients("ws", relay)

    start_message(alice, "bob")
    relayed(phone)  # never answered
    browser.answer(relayed(browser), 603, "Decline")

    assert alice.recv(1.0).status == 603


def test_a_recipient_that_never_answers_gets_408_after_the_timeout(relay, clients):
    bob = registered(clients("udp", relay, "bob"))
    alice = clients("ws", relay)

    started = time.monotonic()
    start_message(alice, "bob")
    first = relayed(bob)
    again = relayed(bob, 2.0)  # UDP: Timer E retransmits the forked request
    reply = alice.recv(float(TIMEOUT) + 3)

    assert again.text == first.text
    assert reply.status == 408
    assert float(TIMEOUT) - 0.5 < time.monotonic() - started < float(TIMEOUT) + 2


def test_a_tcp_binding_whose_connection_is_gone_is_a_transport_error(relay, clients):
    bob = registered(clients("tcp", relay, "bob"))
    bob.close()  # nothing listens at its Contact either
    time.sleep(0.2)
    alice = clients("ws", relay)

    assert send_message(alice, "bob").status == 500  # a lone 503 (§16.9) goes up as 500


def test_max_forwards_is_decremented_and_0_is_refused(relay, clients):
    bob = registered(clients("udp", relay, "bob"))
    alice = clients("udp", relay)

    no_hops = alice.request("MESSAGE", **message_args("bob", "hi", "text/plain"))
    alice.send_raw(no_hops.replace("Max-Forwards: 70", "Max-Forwards: 0"))
    assert alice.recv().status == 483
    assert bob.try_recv(0.3) is None

    start_message(alice, "bob", max_forwards=1)
    message = relayed(bob)
    assert message.all("Max-Forwards") == ["0"]
    bob.answer(message)
    assert alice.recv().status == 200


def test_the_allow_header_names_message(relay, clients):
    alice = clients("udp", relay)
    reply = alice.send("OPTIONS", uri="sip:localhost", contact=None)
    assert "MESSAGE" in reply.header("Allow")


# Offline storage (msilo) -----------------------------------------------------------------


def test_off_line_message_is_stored_and_answered_202(silo, clients):
    alice = clients("ws", silo)

    reply = send_message(alice, "bob", "see you", content_type="text/plain;charset=UTF-8")

    assert reply.status == 202
    [row] = stored(silo)
    assert row["sender"] == "sip:alice@localhost"
    assert row["from_header"] == "<sip:alice@localhost>"  # the tag is per delivery
    assert row["to_header"] == "<sip:bob@localhost>"
    assert row["content_type"] == "text/plain;charset=UTF-8"
    assert bytes(row["body"]) == b"see you"
    assert row["size"] == 7
    [account_id] = silo.rows("SELECT id FROM sipws_sipaccount WHERE username = 'bob'")[0]
    assert row["account_id"] == account_id


def test_stored_messages_are_delivered_at_the_next_register_then_removed(silo, clients):
    alice = clients("udp", silo)
    assert send_message(alice, "bob", "first").status == 202
    assert send_message(alice, "bob", "second", content_type="text/x-markdown").status == 202
    bob = clients("udp", silo, "bob")

    registered(bob)
    first, second = relayed(bob), relayed(bob)

    assert first.start == f"MESSAGE {bob.contact_uri()} SIP/2.0"
    assert first.header("From").startswith("<sip:alice@localhost>;tag=")
    assert first.header("To") == "<sip:bob@localhost>"
    assert (first.body, first.header("Content-Type")) == ("first", "text/plain")
    assert (second.body, second.header("Content-Type")) == ("second", "text/x-markdown")
    sent = parsedate_to_datetime(first.header("Date"))  # RFC 3428 §10, as msilo adds it
    assert abs(sent.timestamp() - time.time()) < 60
    bob.answer(first)
    bob.answer(second)
    assert silo.wait_for(lambda: stored(silo) == [])


def test_a_stored_message_not_acknowledged_is_kept_for_the_next_register(silo, clients):
    alice = clients("ws", silo)
    assert send_message(alice, "bob", "persistent").status == 202
    bob = clients("udp", silo, "bob")

    registered(bob)
    bob.answer(relayed(bob), 480, "Temporarily Unavailable")

    assert silo.wait_for(lambda: stored(silo) and stored(silo)[0]["sending_until"] is None)
    registered(bob)
    again = relayed(bob)
    assert again.body == "persistent"
    bob.answer(again)
    assert silo.wait_for(lambda: stored(silo) == [])


def test_a_websocket_user_gets_stored_messages_on_registering(silo, clients):
    carol = clients("tcp", silo, "carol")
    assert send_message(carol, "alice", "while you were away").status == 202
    alice = clients("ws", silo)

    registered(alice)
    message = relayed(alice)

    assert message.body == "while you were away"
    assert vias(message)[0].startswith("SIP/2.0/WS ")
    alice.answer(message)
    assert silo.wait_for(lambda: stored(silo) == [])


def test_the_store_is_capped_per_user(silo, clients):
    alice = clients("udp", silo)
    for n in range(3):
        assert send_message(alice, "bob", f"message {n}").status == 202

    reply = send_message(alice, "bob", "one too many")

    assert reply.status == 480 and "store full" in reply.start
    assert [bytes(r["body"]) for r in stored(silo)] == [b"message 0", b"message 1", b"message 2"]
    assert send_message(alice, "carol", "another user").status == 202


def test_the_store_is_capped_in_bytes(silo, clients):
    alice = clients("tcp", silo)
    assert send_message(alice, "bob", "x" * 2000).status == 202

    assert send_message(alice, "bob", "y" * 1500).status == 480  # 3500 > 3000 bytes
    assert len(stored(silo)) == 1


def test_expired_stored_messages_are_not_delivered(silo, clients):
    alice = clients("udp", silo)
    assert send_message(alice, "bob", "too old").status == 202
    silo.rows("UPDATE sipws_offlinemessage SET expires = '2000-01-01 00:00:00'")
    bob = clients("udp", silo, "bob")

    registered(bob)

    assert bob.try_recv(0.5) is None
    assert send_message(alice, "carol", "sweeps the old one").status == 202
    assert [bytes(r["body"]) for r in stored(silo)] == [b"sweeps the old one"]


def test_a_registered_user_who_does_not_answer_gets_it_stored(silo, clients):
    bob = registered(clients("udp", silo, "bob"))
    alice = clients("ws", silo)

    start_message(alice, "bob", "are you there?")
    relayed(bob)  # the phone is gone: no answer
    reply = alice.recv(float(TIMEOUT) + 3)

    assert reply.status == 202
    [row] = stored(silo)
    assert bytes(row["body"]) == b"are you there?"


def test_a_registered_user_who_declines_gets_no_stored_copy(silo, clients):
    bob = registered(clients("ws", silo, "bob"))
    alice = clients("udp", silo)

    start_message(alice, "bob")
    bob.answer(relayed(bob), 603, "Decline")

    assert alice.recv().status == 603
    assert stored(silo) == []
