"""Forwarding a request and choosing the answer of a forked non-INVITE (RFC 3261 §16.6, §16.7)."""

import pytest

from sipws.core.message import parse_message
from sipws.core.proxy import ResponseContext, forward, without_top_via

OURS = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKours;rport"
MESSAGE = (
    "MESSAGE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/WS abc.invalid;branch=z9hG4bKalice;received=198.51.100.7;rport=4000\r\n"
    "Route: <sip:192.0.2.1;lr>\r\n"
    "Route: <sip:edge.example.net;lr>\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:alice@example.com>;tag=a1\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: c1\r\n"
    "CSeq: 2 MESSAGE\r\n"
    'Proxy-Authorization: Digest username="alice", realm="example.com", nonce="n", '
    'uri="sip:bob@example.com", response="00"\r\n'
    'Proxy-Authorization: Digest username="alice", realm="other.net", nonce="n", '
    'uri="sip:bob@example.com", response="00"\r\n'
    "Content-Type: text/plain\r\n"
    "Content-Length: 5\r\n\r\nhello"
)


def request():
    return parse_message(MESSAGE.encode())


def response(status: int, *extra: str, via: str = OURS):
    lines = [
        f"SIP/2.0 {status} Reason",
        f"Via: {via}",
        "Via: SIP/2.0/WS abc.invalid;branch=z9hG4bKalice;received=198.51.100.7;rport=4000",
        "From: <sip:alice@example.com>;tag=a1",
        "To: <sip:bob@example.com>;tag=b1",
        "Call-ID: c1",
        "CSeq: 2 MESSAGE",
        *extra,
    ]
    return parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())


def test_forward_retargets_and_adds_our_via_on_top():
    copy = forward(
        request(),
        "sip:bob@203.0.113.5:5062;transport=udp",
        OURS,
        path=["<sip:pathproxy.example.org;lr>"],
        is_own=lambda host: host == "192.0.2.1",
        realms=["example.com"],
    )
    parsed = parse_message(bytes(copy))

    assert parsed.uri == "sip:bob@203.0.113.5:5062;transport=udp"
    assert [str(v) for v in parsed.vias] == [OURS, str(request().vias[0])]
    assert parsed.max_forwards == 69
    # Our own Route is consumed (§16.4); the target's Path goes before the rest.
    assert parsed.headers.get_all("Route") == [
        "<sip:pathproxy.example.org;lr>",
        "<sip:edge.example.net;lr>",
    ]
    [kept] = parsed.headers.get_all("Proxy-Authorization")
    assert 'realm="other.net"' in kept
    assert (parsed.body, parsed.call_id, parsed.headers.get("To")) == (
        b"hello",
        "c1",
        "<sip:bob@example.com>",
    )


def test_without_top_via_keeps_the_rest_even_when_folded():
    folded = response(200, via=OURS + ", SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx")
    assert [str(v) for v in without_top_via(folded).vias] == [
        "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx",
        str(request().vias[0]),
    ]


def test_a_2xx_is_answered_at_once_and_nothing_after_it():
    context = ResponseContext(request(), ["b1", "b2"])

    answer = context.receive("b1", response(200))

    assert answer.status == 200 and context.answer is answer
    assert [str(v) for v in answer.vias] == [str(request().vias[0])]
    assert context.receive("b2", response(200)) is None


@pytest.mark.parametrize(
    ("statuses", "chosen"),
    [
        ((486, 404), 486),  # same class: the first
        ((486, 415), 415),  # guides a resubmission
        ((500, 404), 404),  # the lowest class
        ((302, 404), 302),
        ((503, 503), 500),  # a 503 upstream would blame this proxy
        ((503, 502), 502),
    ],
)
def test_without_a_2xx_the_best_final_response_after_all_branches(statuses, chosen):
    context = ResponseContext(request(), ["b1", "b2"])

    assert context.receive("b1", response(statuses[0])) is None
    answer = context.receive("b2", response(statuses[1]))

    assert answer.status == chosen


def test_a_6xx_ends_the_wait():
    context = ResponseContext(request(), ["b1", "b2", "b3"])
    assert context.receive("b1", response(486)) is None
    assert context.receive("b2", response(603)).status == 603


def test_challenges_of_every_branch_are_merged_into_the_401():
    context = ResponseContext(request(), ["b1", "b2"])
    context.receive("b1", response(401, 'WWW-Authenticate: Digest realm="one", nonce="1"'))
    answer = context.receive("b2", response(407, 'Proxy-Authenticate: Digest realm="two"'))

    assert answer.status == 401
    assert answer.headers.get_all("WWW-Authenticate") == ['Digest realm="one", nonce="1"']
    assert answer.headers.get_all("Proxy-Authenticate") == ['Digest realm="two"']


def test_timeouts_and_transport_errors_count_as_408_and_503():
    context = ResponseContext(request(), ["b1", "b2"])
    assert context.fail("b1", 503) is None
    answer = context.fail("b2", 408)

    assert answer.status == 408
    assert context.best_status == 408
    assert [str(v) for v in answer.vias] == [str(request().vias[0])]


def test_the_proxy_timer_answers_with_the_best_so_far_or_408():
    empty = ResponseContext(request(), ["b1"])
    assert empty.expire().status == 408 and empty.best_status == 408
    assert empty.receive("b1", response(200)) is None  # too late

    partial = ResponseContext(request(), ["b1", "b2"])
    partial.receive("b1", response(480))
    assert partial.expire().status == 480
    assert partial.expire() is None


def test_unknown_branches_are_ignored():
    context = ResponseContext(request(), ["b1"])
    assert context.receive("stray", response(200)) is None
    assert context.answer is None
