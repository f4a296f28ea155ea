"""Node selectors (RFC 4825 §6.3, §6.4): parsing, namespace bindings and walking."""

import pytest
from lxml import etree

from xcapapi.selectors import (
    AttributeSelector,
    NamespaceSelector,
    SelectorError,
    decode_att_value,
    element_path,
    encode_selector,
    find_element,
    parse_selector,
    parse_xmlns,
)

WATCHERINFO = "urn:ietf:params:xml:ns:watcherinfo"
# RFC 4825 §6.3, Figure 3
FIGURE_3 = b"""<?xml version="1.0"?>
<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo"
             version="0" state="full">
  <watcher-list resource="sip:professor@example.net"
                package="presence">
    <watcher status="active"
             id="8ajksjda7s"
             duration-subscribed="509"
             event="approved">sip:userA@example.net</watcher>
    <watcher status="pending"
             id="hh8juja87s997-ass7"
             display-name="Mr. Subscriber"
             event="subscribe">sip:userB@example.org</watcher>
  </watcher-list>
</watcherinfo>"""
# RFC 4825 §6.4
FOO = b"""<?xml version="1.0"?>
<foo xmlns="urn:test:default-namespace">
  <ns1:bar xmlns:ns1="urn:test:namespace1-uri"
           xmlns="urn:test:namespace1-uri">
    <baz/>
    <ns2:baz xmlns:ns2="urn:test:namespace2-uri"/>
  </ns1:bar>
  <ns3:hi xmlns:ns3="urn:test:namespace3-uri">
    <there/>
  </ns3:hi>
</foo>"""


def select(document: bytes, text: str, query: str = "", default=WATCHERINFO):
    root = etree.fromstring(document)
    selector = parse_selector(text, parse_xmlns(query), default)
    return find_element(root, selector.steps)


def test_rfc4825_figure_3_attribute_predicate():
    found = select(FIGURE_3, 'watcherinfo/watcher-list/watcher[@id="8ajksjda7s"]')
    assert found.text == "sip:userA@example.net"


def test_position_and_wildcard_steps():
    assert select(FIGURE_3, "watcherinfo/watcher-list/watcher[2]").get("status") == "pending"
    assert select(FIGURE_3, "*/*/*[1]").get("id") == "8ajksjda7s"
    found = select(FIGURE_3, "watcherinfo/watcher-list/watcher[2][@event='subscribe']")
    assert found.get("display-name") == "Mr. Subscriber"


def test_no_match_and_invalid_select_nothing():
    assert select(FIGURE_3, "watcherinfo/watcher-list/watcher[3]") is None
    assert select(FIGURE_3, "watcherinfo/watcher-list/watcher[0]") is None
    assert select(FIGURE_3, 'watcherinfo/watcher-list/watcher[@id="nope"]') is None
    # Two watchers match: each step must select exactly one element.
    assert select(FIGURE_3, "watcherinfo/watcher-list/watcher") is None
    # Position is applied first, then the attribute test (the first watcher is active).
    assert select(FIGURE_3, 'watcherinfo/watcher-list/watcher[1][@status="pending"]') is None


def test_rfc4825_section_6_4_namespace_bindings():
    default = "urn:test:default-namespace"
    first = select(
        FOO,
        "foo/a:bar/b:baz",
        "xmlns(a=urn:test:namespace1-uri)xmlns(b=urn:test:namespace1-uri)",
        default,
    )
    assert first.tag == "{urn:test:namespace1-uri}baz"
    second = select(
        FOO,
        "foo/a:bar/b:baz",
        "xmlns(a=urn:test:namespace1-uri)xmlns(b=urn:test:namespace2-uri)",
        default,
    )
    assert second.tag == "{urn:test:namespace2-uri}baz"
    again = select(
        FOO,
        "d:foo/a:bar/b:baz",
        "xmlns(a=urn:test:namespace1-uri) xmlns(b=urn:test:namespace2-uri)"
        " xmlns(d=urn:test:default-namespace)",
        default,
    )
    assert again is second or again.tag == second.tag


def test_unprefixed_names_use_the_usage_default_not_the_document_default():
    # <bar> declares its own default namespace; an unprefixed step still means the usage's.
    assert select(FOO, "foo/bar", default="urn:test:default-namespace") is None


def test_terminal_selectors():
    selector = parse_selector('a/b[@x="1"]/@y', {}, None)
    assert selector.terminal == AttributeSelector("y", "@y")
    selector = parse_selector("a/p:b/@p:y", {"p": "urn:p"}, None)
    assert selector.terminal.key == "{urn:p}y"
    assert parse_selector("a/namespace::*", {}, None).terminal == NamespaceSelector()


def test_quoted_values_may_hold_slashes_and_brackets():
    selector = parse_selector('r/e[@uri="sip:a/b]c@x"]/d', {}, "urn:r")
    assert [s.text for s in selector.steps] == ["r", 'e[@uri="sip:a/b]c@x"]', "d"]
    assert selector.steps[1].attr.value == "sip:a/b]c@x"


def test_attribute_values_decode_references():
    assert decode_att_value('"a&quot;b&amp;c&#65;&#x42;"') == 'a"b&cAB'
    assert decode_att_value("'it\"s'") == 'it"s'
    for bad in ('"a"b"', '"a<b"', '"a&b"', "noquotes", '"&#0;"'):
        with pytest.raises(SelectorError):
            decode_att_value(bad)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a/",
        "a//b",
        "a[",
        'a[@x="1"',
        "a[@x=1]",
        "a[x]",
        'a[@x="1"][2]',
        "@x",
        "a/@x/b",
        "a/namespace::*/b",
        "a/b()",
        "a/p:b",  # unbound prefix: RFC 4825 §8 answers 400
        "a/b/@xmlns",
    ],
)
def test_bad_selectors_are_refused(text):
    with pytest.raises(SelectorError):
        parse_selector(text, {}, "urn:x")


def test_xmlns_query_parsing():
    assert parse_xmlns("xmlns(a=urn:a)xmlns(b=urn:b)") == {"a": "urn:a", "b": "urn:b"}
    # Other XPointer schemes are ignored; circumflex escapes undone; quotes tolerated.
    assert parse_xmlns('foo(x(y)z) xmlns(a="urn:a^)") xmlns(b = urn:b)') == {
        "a": "urn:a)",
        "b": "urn:b",
    }
    for bad in ("xmlns(a)", "xmlns(a=urn:a", "junk", "xmlns(1a=urn:x)", "xmlns(a=x^y)"):
        with pytest.raises(SelectorError):
            parse_xmlns(bad)


def test_element_path_selects_the_element_back():
    root = etree.fromstring(FOO)
    baz2 = root[0][1]
    path, bindings = element_path(baz2, "urn:test:default-namespace")
    assert (
        find_element(root, parse_selector(path, bindings, "urn:test:default-namespace").steps)
        is baz2
    )
    assert encode_selector('a/b[@c="d e"]') == "a/b%5B@c=%22d%20e%22%5D"
    assert encode_selector("a/p:b", {"p": "urn:p"}) == "a/p:b?xmlns(p=urn:p)"
