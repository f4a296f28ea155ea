"""The parsers' one-regex fast paths give what their step-by-step fallbacks give.

Each parser of the core first tries one regular expression for the shapes real traffic has,
and only on a miss walks the grammar step by step (which also says what is wrong). Both
must agree on every input: the same value, or the same ParseError reason and status.
Inputs are built from the pieces that sit on the edges of those expressions.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipws.core import headers, uri
from sipws.core.errors import ParseError

PIECES = [
    *("sip:", "sips:", "SIP:", "tel:", "@", ":", ";", "=", "?", ",", "<", ">", '"', "\\"),
    *(" ", "\t", "\r", "\n", "\xa0", "\u2028", "\x0b", "\x00", "\x1f", "\x7f", "é"),
    *("[", "]", "::1", "2001:db8::1", "127.0.0.1", "Example.COM", "u1", "a", "-", "."),
    *("5060", "0", "65535", "65536", "99999", "%41", "~", "*", "'", "/", "&"),
    *("tag", "transport", "lr", "rport", "branch=z9hG4bK1", "+sip.instance", '"<urn:uuid:1>"'),
]
JUNK = st.lists(st.sampled_from(PIECES), max_size=12).map("".join) | st.text(max_size=20)


def one_of(common: tuple[str, ...], edges: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """Mostly one of the `common` choices; else one on an edge of the grammar, or junk."""
    return st.integers(0, 19).flatmap(
        lambda n: JUNK if n == 0 else st.sampled_from(edges if n < 3 and edges else common)
    )


def joined(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map("".join)


SPACE = one_of(("",), (" ", "  ", "\t", "\xa0"))
PARAM = joined(
    SPACE,
    one_of((";",), (",", "", ";;")),
    SPACE,
    one_of(("tag", "lr", "+sip.instance", "rport", "Transport"), ("", "a b", "t\\g")),
    SPACE,
    one_of(("", "="), ("==", "= ")),
    SPACE,
    one_of(("", "1", "z9hG4bK-1", "[2001:db8::1]", '"<urn:uuid:1>"'), ('"a \\" ; b"', '"open')),
)
PARAMS = st.lists(PARAM, max_size=4).map("".join)
HOST = one_of(("example.com", "Example.COM", "127.0.0.1"), ("[::1]", "[::1", "ex_ample", ""))
PORT = one_of(("", ":5060", ":65535"), (":0", ":65536", ":", ":50x", " :5060", ": 5"))
URI = joined(
    one_of(("sip:", "sips:"), ("SIP:", "tel:", "")),
    one_of(("", "alice@", "a:pw@"), ("a:@", "a;b?c@", "@", "%41:b:c@", "a b@")),
    HOST,
    PORT,
    st.lists(
        one_of((";lr", ";transport=udp", ";x=a=b", ";x="), (";", ";=x", "; x", ";a@b")),
        max_size=3,
    ).map("".join),
    one_of(("", "?h=v&i=w"), ("?", "?x@y", "?a?b")),
    SPACE,
)
NAME_ADDR = joined(
    SPACE,
    one_of(("", '"Alice"', "Bob Smith", '"a \\"b\\" <c>; d"'), ('"', '""', '"x\\', "a,b", "é")),
    SPACE,
    one_of(("<",), ("", "<<", " <")),
    URI,
    one_of((">",), ("", " >", ">>")),
    PARAMS,
)
VIA = joined(
    one_of(("SIP/2.0/",), ("sip/2.0/", "SIP / 2.0 / ", "SIP/3.0/", "SIP/2.0")),
    one_of(("UDP", "TCP", "WSS", "udp"), ("", "U DP", "U/DP")),
    one_of((" ",), ("  ", "\t", "", "\xa0")),
    HOST,
    PORT,
    PARAMS,
)
CSEQ = joined(
    SPACE,
    one_of(("1", "0009", "2147483647"), ("2147483648", "-1", "", "١", "9999999999", "99999999999")),
    one_of((" ",), ("  ", "\t", "")),
    one_of(("PUBLISH", "NOTIFY"), ("IN<VITE", "", "A B")),
    SPACE,
)
TEXTS = URI | PARAMS | NAME_ADDR | VIA | CSEQ | JUNK
EXAMPLES = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(parse, text):
    try:
        return parse(text)
    except ParseError as error:
        return ("ParseError", error.reason, error.status)


@EXAMPLES
@given(URI | TEXTS)
def test_sip_uri(text):
    parse = uri.SipUri.parse.__wrapped__  # without its cache, which would hide a difference
    assert outcome(parse, text) == outcome(uri.SipUri._parse_stepwise, text)


@EXAMPLES
@given(NAME_ADDR | TEXTS)
def test_name_addr(text):
    parse = uri.NameAddr.parse.__wrapped__
    assert outcome(parse, text) == outcome(uri.NameAddr._parse_stepwise, text)


@EXAMPLES
@given(VIA | TEXTS)
def test_via(text):
    assert outcome(headers.Via.parse, text) == outcome(headers.Via._parse_stepwise, text)


@EXAMPLES
@given(CSEQ | TEXTS)
def test_cseq(text):
    assert outcome(headers.CSeq.parse, text) == outcome(headers.CSeq._parse_stepwise, text)


@EXAMPLES
@given(joined(HOST, PORT) | TEXTS)
def test_split_hostport(text):
    assert outcome(uri.split_hostport, text) == outcome(uri._split_hostport_stepwise, text)


@EXAMPLES
@given(PARAMS | TEXTS)
def test_parse_params(text):
    for params in (text, ";" + text, " ;" + text):
        assert outcome(uri.parse_params, params) == outcome(uri._parse_params_stepwise, params)


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@example.com:5060;transport=udp;;lr;x=?h=v&i=w",
        "sip:a:@b",
        "sip:a;b?c:d@host",
        "sip:host;maddr=1:2",
        "sip:[::1]:5060",
        "sip:alice@example.com:65536",
        "SIPS:Bob@Example.COM",
    ],
)
def test_sip_uri_examples(text):
    assert outcome(uri.SipUri.parse, text) == outcome(uri.SipUri._parse_stepwise, text)


@pytest.mark.parametrize(
    "text",
    [
        ';tag=1;+sip.ice;reg-id=1;+sip.instance="<urn:uuid:f81d4fae>";expires=600',
        ' ; tag = "a \\" ; b" ;lr',
        ";received=[2001:db8::1];rport=5060",
        ';x="unterminated',
        ';x="a\\',
        ";x=",
        ";;x",
    ],
)
def test_parse_params_examples(text):
    assert outcome(uri.parse_params, text) == outcome(uri._parse_params_stepwise, text)


@pytest.mark.parametrize(
    "text", ["2147483647 NOTIFY", "2147483648 NOTIFY", "0009 A", "9" * 10 + " A"]
)
def test_cseq_examples(text):
    assert outcome(headers.CSeq.parse, text) == outcome(headers.CSeq._parse_stepwise, text)
