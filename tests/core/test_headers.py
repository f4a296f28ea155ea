"""Tests for sipws.core.headers: header names and the typed values Via, CSeq, Event..."""

import pytest

from sipws.core.errors import ParseError
from sipws.core.headers import (
    COMPACT_FORMS,
    CSeq,
    Event,
    Via,
    canonical_name,
    parse_content_type,
    parse_delta_seconds,
    parse_max_forwards,
    parse_uint,
    split_list,
)

# Names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "compact, full",
    [
        ("v", "Via"),
        ("f", "From"),
        ("t", "To"),
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("e", "Content-Encoding"),
        ("k", "Supported"),
        ("s", "Subject"),
        ("o", "Event"),
        ("u", "Allow-Events"),
        ("r", "Refer-To"),
    ],
)
def test_compact_forms_expand_in_either_case(compact, full):
    assert COMPACT_FORMS[compact] == full
    assert canonical_name(compact) == full
    assert canonical_name(compact.upper()) == full


@pytest.mark.parametrize(
    "name, canonical",
    [
        ("call-id", "Call-ID"),
        ("CSEQ", "CSeq"),
        ("www-authenticate", "WWW-Authenticate"),
        ("sip-etag", "SIP-ETag"),
        ("Sip-If-Match", "SIP-If-Match"),
        ("mAx-FoRwArDs", "Max-Forwards"),
        ("subscription-state", "Subscription-State"),
        ("X-Custom-thing", "X-Custom-Thing"),
    ],
)
def test_canonical_names(name, canonical):
    assert canonical_name(name) == canonical


def test_split_list_respects_quotes_and_brackets():
    value = '<sip:a@x.com;p=1,2>, "Doe, J" <sip:b@y.com>,, sip:c@z.com'
    assert split_list(value) == ["<sip:a@x.com;p=1,2>", '"Doe, J" <sip:b@y.com>', "sip:c@z.com"]


# Via ------------------------------------------------------------------------------------


def test_via_parts():
    via = Via.parse("SIP/2.0/udp host.example.com:5070;branch=z9hG4bK776;rport;received=192.0.2.1")
    assert (via.transport, via.host, via.port) == ("UDP", "host.example.com", 5070)
    assert via.branch == "z9hG4bK776"
    assert via.has_param("RPORT") and via.param("rport") is None
    assert via.param("Received") == "192.0.2.1"
    assert via.param("maddr") is None
    assert (
        str(via) == "SIP/2.0/UDP host.example.com:5070;branch=z9hG4bK776;rport;received=192.0.2.1"
    )


def test_via_allows_lws_around_slashes_colons_and_semicolons():
    via = Via.parse("SIP / 2.0 / WSS  df7jal23ls0d.invalid ; branch = z9hG4bKx ")
    assert (via.transport, via.host, via.branch) == ("WSS", "df7jal23ls0d.invalid", "z9hG4bKx")
    assert Via.parse("SIP/2.0/UDP 192.0.2.1 : 5070").port == 5070
    assert Via.parse("SIP/2.0/UDP [::1] :5070").port == 5070


@pytest.mark.parametrize(
    "text, host, port",
    [
        ("SIP/2.0/TCP [2001:db8::9:1]", "[2001:db8::9:1]", None),
        ("SIP/2.0/TCP [2001:db8::9:1]:5062;branch=z9hG4bK1", "[2001:db8::9:1]", 5062),
    ],
)
def test_via_ipv6_sent_by(text, host, port):
    via = Via.parse(text)
    assert (via.host, via.port) == (host, port)


@pytest.mark.parametrize(
    "text",
    [
        "SIP/3.0/UDP host.example.com",
        "XIP/2.0/UDP host.example.com",
        "SIP/2.0/UDP",
        "SIP/2.0 host.example.com",
        "SIP/2.0/UDP host.example.com:99999",
        "SIP/2.0/UDP host.example.com;;branch=z9hG4bK1",
        "SIP/2.0/UDP host.example.com;branch=",
        ";",
        "",
    ],
)
def test_bad_vias_are_rejected(text):
    with pytest.raises(ParseError):
        Via.parse(text)


def test_sent_by_uses_the_transport_default_port():
    assert Via.parse("SIP/2.0/UDP a.example.com").sent_by == "a.example.com:5060"
    assert Via.parse("SIP/2.0/TLS a.example.com").sent_by == "a.example.com:5061"
    assert Via.parse("SIP/2.0/TCP a.example.com:6000").sent_by == "a.example.com:6000"


def test_received_is_added_when_sent_by_is_not_the_source_address():
    """RFC 3261 §18.2.1: a host name, or another address, gets received=."""
    via = Via.parse("SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1")
    stamped = via.with_received("192.0.2.7", 5060)
    assert stamped.param("received") == "192.0.2.7"
    assert str(stamped) == "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;received=192.0.2.7"
    assert via.param("received") is None  # frozen: the original is untouched


def test_received_is_not_added_when_sent_by_is_the_source_address():
    via = Via.parse("SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1")
    assert via.with_received("192.0.2.7", 5060) == via
    ipv6 = Via.parse("SIP/2.0/UDP [2001:DB8:0::7];branch=z9hG4bK1")
    assert ipv6.with_received("2001:db8::7", 5060) == ipv6


def test_rport_gets_the_source_port_and_received_always():
    """RFC 3581 §4: with rport, received is added even when the address matches."""
    via = Via.parse("SIP/2.0/UDP 192.0.2.7:5060;rport;branch=z9hG4bK1")
    stamped = via.with_received("192.0.2.7", 40123)
    assert stamped.params == (("rport", "40123"), ("branch", "z9hG4bK1"), ("received", "192.0.2.7"))


def test_stale_received_is_replaced_and_ipv6_is_unbracketed():
    via = Via.parse("SIP/2.0/UDP h.example.com;received=10.0.0.1;rport=1;branch=z9hG4bK1")
    stamped = via.with_received("[2001:db8::1]", 7000)
    assert stamped.param("received") == "2001:db8::1"
    assert stamped.param("rport") == "7000"
    assert [name for name, _ in stamped.params].count("received") == 1


# CSeq -----------------------------------------------------------------------------------


def test_cseq():
    cseq = CSeq.parse(" 0009\tSUBSCRIBE ")
    assert (cseq.number, cseq.method) == (9, "SUBSCRIBE")
    assert str(cseq) == "9 SUBSCRIBE"
    assert CSeq.parse(f"{2**31 - 1} NOTIFY").number == 2**31 - 1


@pytest.mark.parametrize(
    "text",
    ["", "1", "INVITE", "1 INVITE x", "-1 INVITE", f"{2**31} INVITE", "١ INVITE", "1 IN<VITE"],
)
def test_bad_cseq(text):
    with pytest.raises(ParseError):
        CSeq.parse(text)


# Event ----------------------------------------------------------------------------------


def test_event():
    event = Event.parse("Presence ; id = 42 ; foo")
    assert (event.package, event.id) == ("presence", "42")
    assert event.params == (("id", "42"), ("foo", None))
    assert str(event) == "presence;id=42"
    assert Event.parse("dialog").id is None
    assert str(Event.parse("message-summary")) == "message-summary"


@pytest.mark.parametrize("text", ["", ";id=1", "pres ence", "presence;;id=1", "presence;id="])
def test_bad_event(text):
    with pytest.raises(ParseError):
        Event.parse(text)


# Scalars --------------------------------------------------------------------------------


def test_parse_uint_allows_leading_zeros_and_caps_huge_values():
    assert parse_uint(" 0068 ", "x") == 68
    assert parse_uint("0", "x") == 0
    assert parse_uint("9" * 5000, "x") == 10**20  # no ValueError from int()'s digit limit
    for bad in ("", "-1", "+1", "1.5", "١٢", "0x10"):
        with pytest.raises(ParseError):
            parse_uint(bad, "x")


def test_delta_seconds_clamped():
    assert parse_delta_seconds("3600") == 3600
    assert parse_delta_seconds("1" + "0" * 100) == 2**32 - 1
    with pytest.raises(ParseError) as info:
        parse_delta_seconds("soon", "Min-Expires")
    assert "Min-Expires" in info.value.reason


def test_max_forwards_range():
    assert [parse_max_forwards(v) for v in ("0", "70", "0068", "255")] == [0, 70, 68, 255]
    for bad in ("256", "300", "-1", "seventy", ""):
        with pytest.raises(ParseError):
            parse_max_forwards(bad)


def test_content_type_media_type_only_lowercase():
    assert parse_content_type("Application/PIDF+XML; charset=UTF-8") == "application/pidf+xml"
    assert parse_content_type("multipart/mixed;boundary=x") == "multipart/mixed"
    assert parse_content_type("text / plain") == "text/plain"
    for bad in ("", "text", "text/", "/plain", "te xt/plain"):
        with pytest.raises(ParseError):
            parse_content_type(bad)
