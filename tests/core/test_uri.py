"""Tests for sipws.core.uri: SIP URIs, name-addr / addr-spec, parameters, quoted strings."""

from dataclasses import FrozenInstanceError

import pytest

from sipws.core.errors import ParseError
from sipws.core.uri import (
    NameAddr,
    SipUri,
    parse_params,
    parse_uri,
    quote_string,
    read_quoted,
    split_hostport,
    split_outside_quotes,
)

# SipUri ---------------------------------------------------------------------------------


def test_sip_uri_parts_and_round_trip():
    text = "sip:alice:pw@Example.COM:5070;transport=TCP;lr;maddr=192.0.2.1?Subject=hi&Priority=1"
    uri = SipUri.parse(text)
    assert (uri.scheme, uri.user, uri.password) == ("sip", "alice", "pw")
    assert (uri.host, uri.port) == ("Example.COM", 5070)
    assert uri.params == (("transport", "TCP"), ("lr", None), ("maddr", "192.0.2.1"))
    assert uri.headers == "Subject=hi&Priority=1"
    assert str(uri) == text
    assert SipUri.parse(str(uri)) == uri


def test_sip_uri_without_user_or_port():
    uri = SipUri.parse("sips:registrar.example.com")
    assert (uri.scheme, uri.user, uri.host, uri.port) == (
        "sips",
        None,
        "registrar.example.com",
        None,
    )
    assert str(uri) == "sips:registrar.example.com"


def test_scheme_is_case_insensitive():
    assert SipUri.parse("SIP:bob@example.com").scheme == "sip"


@pytest.mark.parametrize(
    "text, host, port",
    [
        ("sip:alice@[2001:db8::10]", "[2001:db8::10]", None),
        ("sip:alice@[2001:db8::10]:5070", "[2001:db8::10]", 5070),
        ("sip:[::1]:5060;transport=tcp", "[::1]", 5060),
        ("sip:alice@192.0.2.4:5060", "192.0.2.4", 5060),
    ],
)
def test_ip_hosts_with_and_without_port(text, host, port):
    uri = SipUri.parse(text)
    assert (uri.host, uri.port) == (host, port)
    assert str(uri) == text


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@2001:db8::10",  # IPv6 without brackets
        "sip:alice@[2001:db8::10",  # unterminated
        "sip:alice@[2001:db8::10]x",  # junk after the reference
        "sip:alice@[not:an:address:zz]",
        "sip:alice@example.com:0",
        "sip:alice@example.com:65536",
        "sip:alice@example.com:50x",
        "sip:alice@exa mple.com",
        "sip:alice@example.com; lr",
        "sip:@example.com",
        "sip:",
        "sip:alice@",
        "sip:al<ice@example.com",
        "sip:alice@exam_ple.com",
        "http://example.com",
        "example.com",
    ],
)
def test_bad_sip_uris_are_rejected(text):
    with pytest.raises(ParseError) as info:
        SipUri.parse(text)
    assert info.value.status == 400


def test_question_mark_and_semicolon_in_user_part():
    uri = SipUri.parse("sip:a?b;c@example.com;p=1?h=v")
    assert (uri.user, uri.host, uri.params, uri.headers) == (
        "a?b;c",
        "example.com",
        (("p", "1"),),
        "h=v",
    )


def test_params_lookup_is_case_insensitive_and_unescapes_names():
    uri = SipUri.parse("sip:bob@example.com;Transport=WS;%6C%72;n%61me=v%61lue")
    assert uri.transport == "ws"
    assert uri.param("TRANSPORT") == "WS"
    assert uri.has_param("lr") and uri.param("lr") is None
    assert uri.param("name") == "v%61lue"  # values stay as written
    assert uri.param("missing", "default") == "default"
    assert not uri.has_param("maddr")


def test_sips_with_transport_param_is_parsed_for_the_application_to_judge():
    """sips: with transport=udp is contradictory; the parser keeps both, the caller decides."""
    uri = SipUri.parse("sips:alice@example.com;transport=udp")
    assert (uri.scheme, uri.transport) == ("sips", "udp")


def test_aor_unescapes_user_lowercases_host_and_drops_the_rest():
    uri = SipUri.parse("sips:%61lice@EXAMPLE.com:5061;transport=tls")
    assert uri.aor == "sip:alice@example.com"
    assert SipUri.parse("sip:Example.com").aor == "sip:example.com"


def test_matches_compares_as_rfc_3261_says():
    base = SipUri.parse("sip:alice@example.com;transport=tcp")
    assert base.matches(SipUri.parse("sip:%61lice@EXAMPLE.COM;transport=TCP"))
    assert not base.matches(SipUri.parse("sip:Alice@example.com;transport=tcp"))  # user case
    assert not base.matches(SipUri.parse("sip:alice@example.com:5060;transport=tcp"))
    assert not base.matches(SipUri.parse("sips:alice@example.com;transport=tcp"))
    assert not base.matches(SipUri.parse("sip:alice@example.com"))


def test_with_params_replaces_and_appends():
    uri = SipUri.parse("sip:bob@example.com;transport=udp;lr")
    changed = uri.with_params(transport="ws", ob=None)
    assert str(changed) == "sip:bob@example.com;lr;transport=ws;ob"
    assert str(uri) == "sip:bob@example.com;transport=udp;lr"


def test_parse_uri_keeps_other_schemes_as_text():
    assert parse_uri("tel:+1-201-555-0123") == "tel:+1-201-555-0123"
    assert isinstance(parse_uri("sip:bob@example.com"), SipUri)
    for bad in ("no-scheme", "1tel:123", "tel:", "tel:12 34", "tel:<1>"):
        with pytest.raises(ParseError):
            parse_uri(bad)


def test_split_hostport():
    assert split_hostport(" example.com:5060 ") == ("example.com", 5060)
    assert split_hostport("[2001:db8::1]") == ("[2001:db8::1]", None)
    with pytest.raises(ParseError):
        split_hostport("")


# NameAddr -------------------------------------------------------------------------------


def test_name_addr_with_quoted_display_name_and_params():
    addr = NameAddr.parse(
        '"Alice \\"A\\" Smith" <sip:alice@example.com;transport=ws>;tag=abc;q=0.5'
    )
    assert addr.display_name == 'Alice "A" Smith'
    assert addr.sip_uri.transport == "ws"  # inside <>: a URI parameter
    assert addr.params == (("tag", "abc"), ("q", "0.5"))
    assert addr.tag == "abc" and addr.bracketed


def test_quoted_display_name_may_hold_brackets_and_semicolons():
    addr = NameAddr.parse('"a <b>; c=d" <sip:x@example.com>;tag=1')
    assert addr.display_name == "a <b>; c=d"
    assert addr.sip_uri.user == "x" and addr.tag == "1"


def test_unquoted_display_name_is_tokens():
    assert NameAddr.parse("Bob  Smith <sip:bob@example.com>").display_name == "Bob Smith"
    assert NameAddr.parse("bob<sip:bob@example.com>").display_name == "bob"
    assert NameAddr.parse("<sip:bob@example.com>").display_name is None
    with pytest.raises(ParseError):
        NameAddr.parse("Smith, Bob <sip:bob@example.com>")
    with pytest.raises(ParseError):
        NameAddr.parse('"Bob" sip:bob@example.com')


def test_addr_spec_params_belong_to_the_header():
    addr = NameAddr.parse("sip:bob@example.com;transport=tcp;tag=9 ")
    assert not addr.bracketed
    assert addr.sip_uri.params == ()
    assert addr.params == (("transport", "tcp"), ("tag", "9"))
    assert str(addr) == "<sip:bob@example.com>;transport=tcp;tag=9"


def test_addr_spec_with_a_bracket_in_a_quoted_param_value():
    addr = NameAddr.parse('sip:a@example.com;+sip.instance="<urn:uuid:1>";expires=60')
    assert not addr.bracketed and addr.sip_uri.user == "a"
    assert addr.param("+sip.instance") == '"<urn:uuid:1>"'


def test_addr_spec_with_reserved_characters_needs_brackets():
    for text in ("sip:bob@example.com?Subject=x", "sip:a@b.com,sip:c@d.com"):
        with pytest.raises(ParseError):
            NameAddr.parse(text)
    assert NameAddr.parse("<sip:bob@example.com?Subject=x>").sip_uri.headers == "Subject=x"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<sip:bob@example.com",
        "< sip:bob@example.com>",
        "<sip:bob@example.com >",
        "<sip:bob@example.com>junk",
        "<sip:bob@example.com>;;tag=1",
        "<sip:bob@example.com>;tag=1;",
        "<sip:bob@example.com>;=1",
        "<sip:bob@example.com>;tag=a b",
        '<sip:bob@example.com>;x="open',
        '"unterminated <sip:bob@example.com>',
    ],
)
def test_bad_addresses_are_rejected(text):
    with pytest.raises(ParseError):
        NameAddr.parse(text)


def test_other_schemes_are_kept_as_text():
    addr = NameAddr.parse("<tel:+15551234>;tag=1")
    assert addr.uri == "tel:+15551234"
    with pytest.raises(ParseError):
        addr.sip_uri  # noqa: B018


def test_quoted_param_values_keep_quotes_and_may_hold_separators():
    addr = NameAddr.parse('<sip:a@example.com>;+sip.instance="<urn:uuid:1;2,3>";reg-id=1')
    assert addr.param("+sip.instance") == '"<urn:uuid:1;2,3>"'
    assert addr.param("REG-ID") == "1"


def test_ipv6_param_values():
    addr = NameAddr.parse("<sip:a@[2001:db8::1]:5060>;maddr=[2001:db8::2];received=2001:db8::3")
    assert addr.param("maddr") == "[2001:db8::2]"
    assert addr.sip_uri.host == "[2001:db8::1]"


def test_name_addr_round_trip_quotes_what_needs_quoting():
    addr = NameAddr.parse('"a\\\\b \\"c\\"" <sip:x@example.com>;tag=1')
    assert addr.display_name == 'a\\b "c"'
    assert NameAddr.parse(str(addr)) == addr
    nul = NameAddr("sip:x@example.com", "NUL:\x00 DEL:\x7f")
    assert NameAddr.parse(str(nul)).display_name == "NUL:\x00 DEL:\x7f"


def test_with_params_on_name_addr():
    addr = NameAddr.parse("<sip:x@example.com>;tag=1;expires=60")
    assert addr.with_params(tag="2").params == (("expires", "60"), ("tag", "2"))


# Quoted strings and parameters ----------------------------------------------------------


def test_read_quoted_unescapes_and_reports_the_end():
    assert read_quoted('x"a\\"b\\\\c" rest', 1) == ('a"b\\c', 10)
    for bad in ('"abc', '"abc\\"', '"abc\\'):
        with pytest.raises(ParseError):
            read_quoted(bad, 0)


def test_quote_string_escapes_and_round_trips():
    for value in ("plain", 'with "quotes"', "back\\slash", "ctl\x01\x7f"):
        assert read_quoted(quote_string(value), 0)[0] == value
    assert quote_string("a\r\nb") == '"a  b"'


def test_parse_params_grammar():
    assert parse_params("") == ()
    assert parse_params("  ") == ()
    assert parse_params(' ; a = 1 ;b; c="x;y"') == (("a", "1"), ("b", None), ("c", '"x;y"'))
    for bad in ("a=1", ";", ";a;;b", ";a=", ";a=1 2", ";a b=1", ';a="x'):
        with pytest.raises(ParseError):
            parse_params(bad)


def test_split_outside_quotes():
    assert split_outside_quotes('a,"b,c",<d,e>,f', ",") == ["a", '"b,c"', "<d,e>", "f"]
    assert split_outside_quotes('"a\\",b",c', ",") == ['"a\\",b"', "c"]
    with pytest.raises(ParseError):
        split_outside_quotes('"a,b', ",")


def test_repeated_parses_share_one_immutable_result_and_bad_input_still_fails():
    text = "<sip:alice@example.com;transport=udp>;tag=x1"
    first, second = NameAddr.parse(text), NameAddr.parse(text)
    assert first is second  # the LRU of parses: no work for a To or Contact seen before
    with pytest.raises(FrozenInstanceError):
        first.display_name = "mallory"  # type: ignore[misc]
    assert SipUri.parse("sip:bob@example.com") is SipUri.parse("sip:bob@example.com")
    for _ in range(2):  # errors are not remembered as results
        with pytest.raises(ParseError):
            NameAddr.parse("<sip:alice@exa mple.com>")
