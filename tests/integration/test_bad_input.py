"""Hostile and broken input over real sockets: each gets its SIP error or is dropped.

RFC 3261 §8.1.3.5, §16.3, §18.3, §21 for the status codes; RFC 7118 §4 and RFC 6455 §10.2
for the WebSocket handshake. After every test alice's binding must still be stored as it
was: one bad peer must not hurt anyone else.
"""

import re
import time

import pytest
import websockets.sync.client
from websockets.exceptions import InvalidStatus

from tests.serverproc import provision
from tests.sipclient import SipClient, parse_challenges

MAX_FORWARDS = "Max-Forwards: 70"


def bindings(server, user="alice") -> list[dict]:
    return server.records(
        "SELECT * FROM sipws_registration WHERE aor = ? ORDER BY id", (f"sip:{user}@localhost",)
    )


def without(message: str, header: str) -> str:
    lines = message.split("\r\n")
    return "\r\n".join(line for line in lines if not line.lower().startswith(header.lower() + ":"))


def with_length(message: str, value: str) -> str:
    return re.sub(r"(?m)^Content-Length: [^\r\n]*", f"Content-Length: {value}", message)


def assert_answers_options(client: SipClient) -> None:
    """The server still serves this peer: an OPTIONS gets its own 200."""
    text = client.request("OPTIONS")
    client.send_raw(text)
    reply = client.recv()
    assert reply.status == 200
    assert reply.header("CSeq") == f"{client.cseq} OPTIONS"


def transport_client(server, transport: str) -> SipClient:
    return SipClient(transport, server, user="bob")


@pytest.fixture(scope="module")
def alice_binding(server):
    client = SipClient("udp", server)
    try:
        assert client.send_authenticated("REGISTER", expires=3600).status == 200
    finally:
        client.close()
    [row] = bindings(server)
    return row


@pytest.fixture(autouse=True)
def alice_is_kept(server, alice_binding):
    yield
    assert bindings(server) == [alice_binding]


@pytest.fixture
def udp(server):
    client = transport_client(server, "udp")
    yield client
    client.close()


@pytest.fixture(params=["udp", "tcp", "ws"])
def any_transport(request, server):
    client = transport_client(server, request.param)
    yield client
    client.close()


@pytest.fixture(params=["udp", "ws"])
def datagram_like(request, server):
    """Transports where a message is one datagram or frame, so its end is known."""
    client = transport_client(server, request.param)
    yield client
    client.close()


# Dropped: nothing a response could be addressed to ------------------------------------


GARBAGE = [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello on the UDP port
    b"hello world\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"SIP/2.0 200\r\n\r\n",  # a response with no headers
    bytes(range(256)) * 4,
]


def test_garbage_datagrams_are_dropped(udp):
    for datagram in GARBAGE:
        udp.send_raw(datagram)

    assert udp.try_recv(1.0) is None
    assert_answers_options(udp)


def test_garbage_frame_leaves_the_websocket_open(server):
    client = transport_client(server, "ws")
    try:
        for frame in GARBAGE[1:3]:
            client.send_raw(frame)
        assert_answers_options(client)  # the first reply on the flow is the OPTIONS 200
        assert client.try_recv(0.2) is None
    finally:
        client.close()


def test_a_repeated_bad_message_is_logged_once(server, udp):
    for _ in range(5):
        udp.send_raw(b"OPTIONS sip:localhost SIP/2.0\r\nZq7-unique garbage\r\n\r\n")
    assert_answers_options(udp)

    def logged():
        return [line for line in server.output if "Zq7-unique" in line]

    assert server.wait_for(logged)
    time.sleep(0.2)
    assert len(logged()) == 1


def test_request_without_via_is_dropped(udp):
    udp.send_raw(without(udp.request("OPTIONS"), "Via"))

    assert_answers_options(udp)  # the first reply is the next request's
    assert udp.try_recv(0.3) is None


# 400 Bad Request: the headers can be read, so the sender can learn why ------------------


def test_body_shorter_than_content_length_is_400(datagram_like):
    message = datagram_like.request("OPTIONS", body="hello", headers=["Content-Type: text/plain"])

    datagram_like.send_raw(with_length(message, "50"))

    reply = datagram_like.recv()
    assert reply.status == 400
    assert reply.header("CSeq") == f"{datagram_like.cseq} OPTIONS"
    assert_answers_options(datagram_like)


@pytest.mark.parametrize("header", ["Call-ID", "From", "To", "CSeq"])
def test_missing_mandatory_header_is_400(any_transport, header):
    message = any_transport.request("OPTIONS")
    branch = re.search(r"branch=(\w+)", message).group(1)

    any_transport.send_raw(without(message, header))

    reply = any_transport.recv()
    assert reply.status == 400
    assert header.lower() in reply.start.lower()
    assert branch in reply.header("Via")  # addressed to this transaction
    assert_answers_options(any_transport)


@pytest.mark.parametrize("value", ["abc", "-1", "1 2", "99999999999999999999"])
def test_bad_content_length_is_400(datagram_like, value):
    datagram_like.send_raw(with_length(datagram_like.request("OPTIONS"), value))

    assert datagram_like.recv().status == 400
    assert_answers_options(datagram_like)


@pytest.mark.parametrize(
    "message",
    [
        "OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKnolen\r\n"
        "From: <sip:bob@localhost>;tag=1\r\nTo: <sip:bob@localhost>\r\nCall-ID: nolen\r\n"
        "CSeq: 1 OPTIONS\r\n\r\n",  # no Content-Length on a stream
        "OPTIONS sip:localhost SIP/2.0\r\nContent-Length: abc\r\n\r\n",
        "OPTIONS sip:localhost SIP/2.0\r\nContent-Length: 4\r\nl: 5\r\n\r\nbody",
    ],
    ids=["no-length", "bad-length", "two-lengths"],
)
def test_unframeable_tcp_stream_is_closed(server, message):
    client = transport_client(server, "tcp")
    try:
        client.send_raw(message)
        with pytest.raises(ConnectionError):
            client.recv(3.0)
    finally:
        client.close()
    fresh = transport_client(server, "tcp")
    try:
        assert_answers_options(fresh)
    finally:
        fresh.close()


# Status codes of the dispatcher -------------------------------------------------------


def test_max_forwards_zero_is_483(udp):
    message = udp.request("REGISTER", expires=600).replace(MAX_FORWARDS, "Max-Forwards: 0")
    udp.send_raw(message)

    assert udp.recv().status == 483
    assert bindings(udp.server, "bob") == []


def test_invite_is_405_with_allow(any_transport):
    reply = any_transport.send("INVITE", body="v=0\r\n", headers=["Content-Type: application/sdp"])

    assert reply.status == 405
    allowed = {m.strip() for m in ",".join(reply.all("Allow")).split(",")}
    assert {"REGISTER", "OPTIONS"} <= allowed
    assert "INVITE" not in allowed


def test_unknown_method_is_501(any_transport):
    assert any_transport.send("FOO").status == 501


@pytest.mark.parametrize("method", ["OPTIONS", "REGISTER"])
def test_tel_request_uri_is_416(udp, method):
    reply = udp.send(method, uri="tel:+15551234567", expires=600)

    assert reply.status == 416
    assert bindings(udp.server, "bob") == []


def test_options_is_200_with_allow_accept_supported(any_transport):
    reply = any_transport.send("OPTIONS", contact=None)

    assert reply.status == 200
    assert "REGISTER" in reply.header("Allow")
    assert reply.header("Accept")
    assert "outbound" in reply.header("Supported")


# Oversized messages --------------------------------------------------------------------


def oversized(client: SipClient, size: int, *, length: bool = True) -> str:
    message = client.request("OPTIONS", body="x" * size, headers=["Content-Type: text/plain"])
    return message if length else without(message, "Content-Length")


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_message_over_64_kib_is_513(server, transport):
    client = transport_client(server, transport)
    try:
        client.send_raw(oversized(client, 70_000))
        reply = client.recv(2.0)
        assert reply.status == 513
        assert reply.header("CSeq") == f"{client.cseq} OPTIONS"
    finally:
        client.close()


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    # A UDP datagram cannot exceed 65507 bytes: test the limit with a smaller one.
    proc = provision(tmp_path_factory.mktemp("small"), [], SIP_MAX_MESSAGE_SIZE="4096")
    proc.start()
    yield proc
    proc.stop()


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "no-content-length"])
def test_datagram_over_the_limit_is_513(small_server, length):
    client = SipClient("udp", small_server)
    try:
        client.send_raw(oversized(client, 5000, length=length))
        reply = client.recv(2.0)
        assert reply.status == 513
        assert reply.header("CSeq") == f"{client.cseq} OPTIONS"
        assert_answers_options(client)
    finally:
        client.close()


# WebSocket handshake ---------------------------------------------------------------------


@pytest.mark.parametrize("subprotocols", [None, ["chat"]])
def test_websocket_without_sip_subprotocol_is_refused(server, subprotocols):
    with pytest.raises(InvalidStatus) as refused:
        websockets.sync.client.connect(server.ws_url, subprotocols=subprotocols, open_timeout=5)
    assert refused.value.response.status_code == 403


def test_websocket_from_a_foreign_origin_is_refused(server):
    with pytest.raises(InvalidStatus) as refused:
        websockets.sync.client.connect(
            server.ws_url, subprotocols=["sip"], origin="http://evil.example", open_timeout=5
        )
    assert refused.value.response.status_code == 403


WS_OPTIONS = (
    "OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws{n}\r\n"
    "Max-Forwards: 70\r\nFrom: <sip:bob@localhost>;tag=ws{n}\r\nTo: <sip:localhost>\r\n"
    "Call-ID: origin-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


@pytest.mark.parametrize("origin", [None, "same-host"])
def test_websocket_without_origin_or_from_own_host_is_accepted(server, origin):
    if origin == "same-host":
        origin = server.http_url
    with websockets.sync.client.connect(
        server.ws_url, subprotocols=["sip"], origin=origin, open_timeout=5
    ) as ws:
        assert ws.subprotocol == "sip"
        ws.send(WS_OPTIONS.format(n=1))
        assert ws.recv(timeout=5).startswith("SIP/2.0 200 ")


# Retransmissions and floods ---------------------------------------------------------------


def test_udp_retransmission_gets_the_same_response_without_a_second_effect(server, udp):
    assert udp.send_authenticated("REGISTER", contact="*", expires=0).status == 200
    challenge = parse_challenges(udp.send("REGISTER", expires=600).text)[0]
    auth = udp.authorization("REGISTER", challenge, "MD5")
    message = udp.request("REGISTER", expires=600, auth=auth)

    udp.send_raw(message)
    first = udp.recv()
    [row] = bindings(server, "bob")
    udp.send_raw(message)  # same branch: a retransmission, not a replayed nonce
    second = udp.recv()

    assert first.status == 200
    assert second.text == first.text  # the same To-tag, Date and Contact expiry
    assert bindings(server, "bob") == [row]
    assert udp.send_authenticated("REGISTER", contact="*", expires=0).status == 200


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory):
    proc = provision(tmp_path_factory.mktemp("limited"), [], SIP_RATE_LIMIT="20")
    proc.start()
    yield proc
    proc.stop()


def test_flood_from_one_source_is_rate_limited(limited_server):
    client = SipClient("udp", limited_server)
    try:
        for _ in range(200):
            client.send_raw(client.request("OPTIONS"))
        answered = 0
        while client.try_recv(0.5) is not None:
            answered += 1

        assert 20 <= answered < 100  # a burst of 2 × rate, then 20/s
        time.sleep(1.0)  # the bucket refills at 20 tokens per second
        assert_answers_options(client)
    finally:
        client.close()
