"""Tests for sipws.core.message: Headers, parse_message, serialisation, make_response and
the TCP StreamFramer."""

import re

import pytest

from sipws.core.errors import ParseError
from sipws.core.message import (
    MAX_MESSAGE_SIZE,
    Headers,
    Request,
    Response,
    StreamFramer,
    branch_node,
    make_response,
    new_branch,
    new_tag,
    parse_message,
)

HEAD = (
    "SUBSCRIBE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKnashds7\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:bob@example.com>\r\n"
    'From: "Alice" <sip:alice@example.com>;tag=1928301774\r\n'
    "Call-ID: a84b4c76e66710\r\n"
    "CSeq: 314159 SUBSCRIBE\r\n"
    'Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;+sip.instance="<urn:uuid:1>"\r\n'
    "Event: presence\r\n"
    "Expires: 600\r\n"
)


def message(extra: str = "", body: bytes = b"", length: int | None = None) -> bytes:
    length_line = "" if length is None else f"Content-Length: {length}\r\n"
    return (HEAD + extra + length_line + "\r\n").encode() + body


def parse_request(data: bytes, **kwargs) -> Request:
    parsed = parse_message(data, **kwargs)
    assert isinstance(parsed, Request)
    return parsed


def error_of(data: bytes, **kwargs) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_message(data, **kwargs)
    return info.value


# Headers --------------------------------------------------------------------------------


def test_headers_names_are_case_insensitive_and_compact_aware():
    headers = Headers([("v", "SIP/2.0/UDP a"), ("VIA", "SIP/2.0/UDP b"), ("call-id", "x")])
    assert headers.get("Via") == headers.get("v") == "SIP/2.0/UDP a"
    assert headers.get("CALL-ID") == headers.get("i") == "x"
    assert "via" in headers and "V" in headers and "Route" not in headers
    assert list(headers) == [("Via", "SIP/2.0/UDP a"), ("Via", "SIP/2.0/UDP b"), ("Call-ID", "x")]
    assert headers.get("Route") is None and headers.get("Route", "d") == "d"


def test_get_all_splits_list_headers_only():
    headers = Headers()
    headers.add("Via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2")
    headers.add("v", "SIP/2.0/UDP c")
    headers.add("Contact", '"Doe, John" <sip:j@x.com;a=1,2>, <sip:k@y.com>')
    headers.add("Subject", "Hello, world")
    headers.add("Subject", "again")
    headers.add("Authorization", 'Digest username="a", realm="b"')
    assert headers.get_all("via") == [
        "SIP/2.0/UDP a;branch=z9hG4bK1",
        "SIP/2.0/UDP b;branch=z9hG4bK2",
        "SIP/2.0/UDP c",
    ]
    assert headers.get_all("m") == ['"Doe, John" <sip:j@x.com;a=1,2>', "<sip:k@y.com>"]
    assert headers.get_all("Subject") == ["Hello, world", "again"]
    assert headers.get_all("Authorization") == ['Digest username="a", realm="b"']
    assert headers.get_all("Route") == []


def test_headers_set_remove_copy():
    headers = Headers([("Expires", "1"), ("To", "t"), ("expires", "2")])
    headers.set("EXPIRES", "3")
    assert list(headers) == [("Expires", "3"), ("To", "t")]
    headers.set("Event", "presence")
    assert headers.get("o") == "presence" and len(headers) == 3
    clone = headers.copy()
    clone.remove("To")
    assert "To" in headers and "To" not in clone


# Parsing --------------------------------------------------------------------------------


def test_parse_a_request():
    msg = parse_request(message(length=0))
    assert (msg.method, msg.uri) == ("SUBSCRIBE", "sip:bob@example.com")
    assert msg.sip_uri.user == "bob" and msg.uri_scheme == "sip"
    assert msg.top_via.transport == "WSS" and msg.top_via.branch == "z9hG4bKnashds7"
    assert msg.from_.display_name == "Alice" and msg.from_.tag == "1928301774"
    assert msg.to.tag is None
    assert (msg.cseq.number, msg.call_id, msg.max_forwards) == (314159, "a84b4c76e66710", 70)
    assert msg.contacts[0].param("+sip.instance") == '"<urn:uuid:1>"'
    assert msg.event.package == "presence" and msg.expires == 600
    assert msg.content_type is None and msg.body == b""
    assert repr(msg) == "<Request SUBSCRIBE sip:bob@example.com>"


def test_parse_a_response():
    data = (
        b"SIP/2.0 202 Accepted\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n"
        b"To: <sip:b@example.com>;tag=2\r\nFrom: <sip:a@example.com>;tag=1\r\n"
        b"Call-ID: c\r\nCSeq: 1 SUBSCRIBE\r\nContent-Length: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason, msg.to.tag) == (202, "Accepted", "2")
    assert repr(msg) == "<Response 202 Accepted>"


def test_compact_forms_and_odd_case_when_parsing():
    data = (
        b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
        b"v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\nt: sip:bob@example.com\r\n"
        b"F: <sip:alice@example.com>;tag=1\r\ni: cid\r\nCSEQ: 1 OPTIONS\r\n"
        b"c: text/plain\r\nL: 5\r\n\r\nhello"
    )
    msg = parse_request(data)
    assert (msg.call_id, msg.content_type, msg.body) == ("cid", "text/plain", b"hello")
    assert msg.to.sip_uri.user == "bob" and msg.from_.tag == "1"
    assert b"\r\nCall-ID: cid\r\n" in bytes(msg) and b"\r\nContent-Length: 5\r\n" in bytes(msg)


def test_header_folding_with_spaces_and_tabs():
    data = message("Subject: first\r\n   second\r\n\tthird\r\n", length=0)
    assert parse_request(data).headers.get("Subject") == "first second third"
    folded_to = data.replace(b"To: <sip:bob@example.com>", b"To:\r\n <sip:bob@example.com>")
    assert parse_request(folded_to).to.sip_uri.user == "bob"


def test_header_names_seen_before_are_still_checked_for_their_colon():
    """Names as received are remembered (a message has the same dozen); a line that is
    only a known name, without its colon, is still malformed."""
    assert parse_request(message(length=0)).headers.get("Event") == "presence"
    assert error_of(message("Event\r\n", length=0)).status == 400
    spaced = parse_request(message("Subject : 60\r\n", length=0))
    assert spaced.headers.get("Subject") == "60"


def test_made_up_header_names_are_parsed_but_not_all_remembered():
    from sipws.core import message as module

    for n in range(module._MAX_NAMES_SEEN + 50):
        parsed = parse_request(message(f"X-Made-Up-{n}: {n}\r\n", length=0))
        assert parsed.headers.get(f"x-made-up-{n}") == str(n)
    assert len(module._NAMES_SEEN) <= module._MAX_NAMES_SEEN


def test_lf_line_ends_and_leading_crlf_are_accepted():
    data = b"\r\n\r\n" + message(length=0).replace(b"\r\n", b"\n")
    assert parse_request(data).call_id == "a84b4c76e66710"


def test_mixed_line_ends_and_the_first_empty_line_ends_the_headers():
    """CRLF and lone LF may alternate; the first empty line of either kind ends the header
    section, even with a CRLF CRLF in the body after it."""
    data = message(length=None).replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\n")
    mixed = data[: -len(b"\r\n")] + b"\nbody\r\n\r\nmore"
    parsed = parse_request(mixed)
    assert parsed.max_forwards == 70 and parsed.headers.get("Expires") == "600"
    assert parsed.body == b"body\r\n\r\nmore"


def test_unknown_content_encoding_reaches_the_application():
    """The parser keeps the values; the server answers 415 with Accept-Encoding
    (RFC 3261 §8.2.3), since it cannot read the body."""
    msg = parse_request(message("e: gzip, x-unknown\r\n", b"\x1f\x8b", length=2))
    assert msg.headers.get_all("Content-Encoding") == ["gzip", "x-unknown"]
    assert msg.body == b"\x1f\x8b"


def test_non_sip_request_uri_is_answered_416():
    msg = parse_request(message(length=0).replace(b"sip:bob@example.com SIP", b"tel:+1555 SIP"))
    assert msg.uri_scheme == "tel"
    with pytest.raises(ParseError) as info:
        msg.sip_uri  # noqa: B018
    assert info.value.status == 416


# Content-Length -------------------------------------------------------------------------


def test_missing_content_length_over_a_datagram_means_the_rest_is_body():
    assert parse_request(message(body=b"<pidf/>")).body == b"<pidf/>"


def test_missing_content_length_on_a_stream_is_an_error():
    error = error_of(message(body=b"<pidf/>"), stream=True)
    assert error.status == 400 and "Content-Length" in error.reason
    assert parse_request(message(body=b"<pidf/>", length=7), stream=True).body == b"<pidf/>"


def test_content_length_larger_than_the_body_is_400():
    error = error_of(message(body=b"abc", length=4))
    assert error.status == 400
    assert isinstance(error.message, Request)  # still answerable


def test_content_length_smaller_than_the_body_truncates():
    assert parse_request(message(body=b"abcdef", length=3)).body == b"abc"
    assert parse_request(message(body=b"abc", length=0)).body == b""


@pytest.mark.parametrize("value", ["-1", "five", "1 2", "١٢", "0x10", "9" * 5000])
def test_bad_content_length_values(value):
    data = message(f"Content-Length: {value}\r\n", b"x" * 20)
    assert error_of(data).status == 400


def test_two_content_length_headers_are_400_even_when_equal():
    data = message("Content-Length: 3\r\nl: 3\r\n", b"abc")
    assert "more than one" in error_of(data).reason


# Size limits and required headers --------------------------------------------------------


def test_message_over_64_kib_is_513():
    fill = MAX_MESSAGE_SIZE - len(message("X-Fill: \r\n", length=0))
    exact = message(f"X-Fill: {'a' * fill}\r\n", length=0)
    assert len(exact) == MAX_MESSAGE_SIZE
    assert parse_request(exact).headers.get("X-Fill") == "a" * fill
    big = message(f"X-Fill: {'a' * (fill + 1)}\r\n", length=0)
    assert error_of(big).status == 513


@pytest.mark.parametrize("name", ["Via", "To", "From", "Call-ID", "CSeq"])
def test_missing_mandatory_header_is_400(name):
    lines = [line for line in HEAD.split("\r\n") if not line.startswith(name + ":")]
    error = error_of(("\r\n".join(lines) + "Content-Length: 0\r\n\r\n").encode())
    assert (error.status, error.reason) == (400, f"missing {name}")


@pytest.mark.parametrize(
    "old, new",
    [
        (b"Call-ID: a84b4c76e66710", b"Call-ID: "),
        (b"Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKnashds7", b"Via: "),
        (b"CSeq: 314159 SUBSCRIBE", b"CSeq: 314159 NOTIFY"),
        (b"Max-Forwards: 70", b"Max-Forwards: 256"),
        (b"SUBSCRIBE sip:bob@example.com SIP/2.0", b"SUBSCRIBE sip:bob@example.com SIP/2.0 x"),
        (b"SUBSCRIBE sip:bob@example.com SIP/2.0", b"SUBSCRIBE sip:bob@exa mple.com SIP/2.0"),
        (b"SUBSCRIBE sip:bob@example.com SIP/2.0", b"SUBSCRIBE sip:bob@ SIP/2.0"),
        (b"Contact: <sip:alice@", b"Contact: sip:alice@"),
        (b"Event: presence", b"Event presence"),
        (b"Via: SIP/2.0/WSS", b" Via: SIP/2.0/WSS"),
        (b"Event: presence", b"Ev ent: presence"),
    ],
)
def test_malformed_requests_are_400(old, new):
    data = message(length=0)
    assert old in data
    assert error_of(data.replace(old, new, 1)).status == 400


def test_bad_version_is_505_with_the_message_attached():
    data = message(length=0).replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
    error = error_of(data)
    assert error.status == 505 and error.message.call_id == "a84b4c76e66710"


@pytest.mark.parametrize(
    "line", [b"SIP/2.0 99 Low", b"SIP/2.0 700 High", b"SIP/2.0 2000 OK", b"SIP/2.0 20 OK", b""]
)
def test_bad_status_lines(line):
    tail = b"\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nTo: <sip:b@x>\r\nFrom: <sip:a@x>;tag=1\r\n"
    assert error_of(line + tail + b"Call-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n").status == 400


# Serialisation --------------------------------------------------------------------------


def test_bytes_round_trip():
    original = message("Subject: hi\r\n", b"<presence/>", length=11)
    msg = parse_request(original)
    assert bytes(msg) == original
    assert bytes(parse_message(bytes(msg))) == original


def test_serialising_recomputes_content_length():
    msg = parse_request(message(body=b"abc", length=3))
    msg.body = b"abcdef"
    wire = bytes(msg)
    assert wire.count(b"Content-Length") == 1 and wire.endswith(b"Content-Length: 6\r\n\r\nabcdef")


def test_response_built_by_hand():
    response = Response(200, headers=Headers([("Call-ID", "x")]), body=b"ok")
    assert bytes(response) == b"SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: 2\r\n\r\nok"
    assert Response(299).reason == "Unknown"
    assert Response(100, "").start_line() == "SIP/2.0 100 "


def test_stamp_received_rewrites_the_top_via_and_moves_the_vias_last():
    """RFC 3261 §18.2.1, RFC 3581 §4, as the dispatcher does for every request."""
    request = parse_request(
        message("Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1;rport, SIP/2.0/UDP p2\r\n")
    )
    request.stamp_received("192.0.2.9", 40000)
    names = [name for name, _ in request.headers]
    assert names[-3:] == ["Via", "Via", "Via"] and "Via" not in names[:-3]
    assert request.headers.get_all("Via") == [
        "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKnashds7;received=192.0.2.9",
        "SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1;rport",
        "SIP/2.0/UDP p2",
    ]
    assert [str(via) for via in request.vias] == request.headers.get_all("Via")
    assert request.top_via.param("received") == "192.0.2.9"


# make_response (RFC 3261 §8.2.6) ----------------------------------------------------------


def test_make_response_copies_the_dialog_headers_and_adds_a_to_tag():
    request = parse_request(
        message(
            "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1, SIP/2.0/UDP p2;branch=z9hG4bKp2\r\n"
        )
    )
    response = make_response(request, 200)
    assert response.headers.get_all("Via") == [
        "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKnashds7",
        "SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1",
        "SIP/2.0/UDP p2;branch=z9hG4bKp2",
    ]
    assert response.headers.get("From") == request.headers.get("From")
    assert response.headers.get("Call-ID") == "a84b4c76e66710"
    assert response.headers.get("CSeq") == "314159 SUBSCRIBE"
    assert response.to.tag and response.to.sip_uri.user == "bob"
    assert (response.status, response.reason) == (200, "OK")
    wire = bytes(response)
    assert wire.endswith(b"Content-Length: 0\r\n\r\n")
    assert parse_message(wire).to.tag == response.to.tag


def test_make_response_uses_the_given_tag_and_keeps_an_existing_one():
    request = parse_request(message(length=0))
    assert make_response(request, 202, to_tag="mytag").to.tag == "mytag"
    in_dialog = parse_request(
        message(length=0).replace(b"example.com>\r\nFrom", b"example.com>;tag=old\r\nFrom")
    )
    assert in_dialog.to.tag == "old"
    assert (
        make_response(in_dialog, 200, to_tag="new").headers.get("To")
        == "<sip:bob@example.com>;tag=old"
    )
    spaced = parse_request(
        message(length=0).replace(b"example.com>\r\nFrom", b"example.com> ; tag = x\r\nFrom")
    )
    assert make_response(spaced, 481).to.tag == "x"


def test_100_trying_has_no_to_tag_but_copies_timestamp():
    request = parse_request(message("Timestamp: 54.2\r\n", length=0))
    trying = make_response(request, 100)
    assert trying.to.tag is None and trying.reason == "Trying"
    assert trying.headers.get("Timestamp") == "54.2"
    assert make_response(request, 200).headers.get("Timestamp") is None


def test_make_response_body_and_reason():
    response = make_response(parse_request(message(length=0)), 489, "Unknown Package")
    response.body = b"why"
    wire = bytes(response)
    assert wire.startswith(b"SIP/2.0 489 Unknown Package\r\n")
    assert wire.endswith(b"Content-Length: 3\r\n\r\nwhy")


def test_new_tag_and_branch():
    assert re.fullmatch(r"[0-9a-f]{12}", new_tag())
    assert re.fullmatch(r"z9hG4bK[0-9a-f]{16}", new_branch())
    assert new_branch() != new_branch()


def test_a_branch_names_the_node_that_sent_the_request():
    branch = new_branch("c0ffee01")
    assert re.fullmatch(r"z9hG4bK\.c0ffee01\.[0-9a-f]{16}", branch)
    assert branch_node(branch) == "c0ffee01"
    assert branch_node(new_branch()) is None
    assert branch_node("z9hG4bK-524287-1---5dd6f3d6cbd3a2b4") is None  # someone else's


# StreamFramer (RFC 3261 §18.3) ------------------------------------------------------------

FIRST = message(body=b"abc", length=3)
SECOND = message(length=0).replace(b"314159", b"314160")


def test_framer_two_messages_in_one_chunk():
    framer = StreamFramer()
    assert framer.feed(FIRST + SECOND) == [FIRST, SECOND]
    assert framer.feed(b"") == []


def test_framer_message_split_across_chunks():
    framer = StreamFramer()
    data = FIRST + SECOND
    out = []
    for i in range(len(data)):
        out += framer.feed(data[i : i + 1])
    assert out == [FIRST, SECOND]


def test_framer_skips_keepalive_crlfs_between_messages():
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n" + FIRST + b"\r\n\r\n") == [FIRST]
    assert framer.feed(SECOND) == [SECOND]


def test_framer_accepts_compact_content_length():
    data = message(body=b"xy").replace(b"Expires: 600\r\n", b"Expires: 600\r\nl:2\r\n")
    assert StreamFramer().feed(data) == [data]


def test_framer_missing_content_length_is_an_error():
    with pytest.raises(ParseError) as info:
        StreamFramer().feed(message(body=b"abc"))
    assert info.value.status == 400


def test_framer_oversize_is_513():
    with pytest.raises(ParseError) as info:
        StreamFramer().feed(message(length=MAX_MESSAGE_SIZE))
    assert info.value.status == 513
    framer = StreamFramer(max_size=1000)
    assert framer.feed(b"OPTIONS sip:x SIP/2.0\r\nX: " + b"a" * 900) == []
    with pytest.raises(ParseError) as info:
        framer.feed(b"a" * 200)
    assert info.value.status == 513


def test_framed_messages_parse_with_stream_true():
    framer = StreamFramer()
    assert [parse_message(m, stream=True).cseq.number for m in framer.feed(FIRST + SECOND)] == [
        314159,
        314160,
    ]


def test_response_from_and_to_are_read_on_demand():
    """A response is matched by Via branch and CSeq (RFC 3261 §17.1.3): a malformed To
    does not stop the parse, and reading it later raises."""
    data = (
        b"SIP/2.0 200 OK\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc\r\n"
        b'To: "unterminated <sip:bob@example.com>;tag=1\r\n'
        b"From: <sip:alice@example.com>;tag=2\r\n"
        b"Call-ID: c1\r\n"
        b"CSeq: 7 NOTIFY\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    response = parse_message(data)
    assert isinstance(response, Response)
    assert response.top_via.branch == "z9hG4bKabc"
    assert response.cseq.method == "NOTIFY"
    with pytest.raises(ParseError):
        _ = response.to


def test_request_with_malformed_to_still_fails_the_parse():
    data = HEAD.replace("To: <sip:bob@example.com>", 'To: "unterminated <sip:bob@x>')
    with pytest.raises(ParseError):
        parse_message((data + "Content-Length: 0\r\n\r\n").encode())
