"""Document operations (RFC 4825 §8): the insertion rules of §8.2.3 with the RFC's own
examples, replacement, deletion, reads, and the validation pipeline's first steps."""

import pytest

from xcapapi import errors
from xcapapi.documents import (
    ParentMissing,
    delete_node,
    parse_document,
    put_attribute,
    put_element,
    read,
)
from xcapapi.selectors import parse_selector, parse_xmlns

EL = "application/xcap-el+xml"
ATT = "application/xcap-att+xml"
# RFC 4825 §8.2.3
ROOT = b"""<?xml version="1.0"?>
<root>
 <el1 att="first"/>
 <el1 att="second"/>
 <!-- comment -->
 <el2 att="first"/>
</root>"""


def sel(text, query="", default=None):
    return parse_selector(text, parse_xmlns(query), default)


def insert(selector, body, document=ROOT, default=None):
    return put_element(document, sel(selector, default=default), body, EL)


@pytest.mark.parametrize(
    "selector", ['root/el1[@att="third"]', 'root/el1[3][@att="third"]', 'root/*[3][@att="third"]']
)
def test_insert_after_the_last_of_its_name(selector):
    new, created = insert(selector, b'<el1 att="third"/>')
    assert created
    assert new == ROOT.replace(b'<el1 att="second"/>', b'<el1 att="second"/><el1 att="third"/>')


def test_insert_a_new_name_at_the_very_end():
    new, _ = insert("root/el3", b'<el3 att="first"/>')
    assert new == ROOT.replace(b"\n</root>", b'\n<el3 att="first"/></root>')


@pytest.mark.parametrize("selector", ['root/el2[@att="2"]', 'root/el2[2][@att="2"]'])
def test_insert_a_second_el2(selector):
    new, _ = insert(selector, b'<el2 att="2"/>')
    assert new == ROOT.replace(b'<el2 att="first"/>', b'<el2 att="first"/><el2 att="2"/>')


def test_insert_second_among_all_elements():
    new, _ = insert('root/*[2][@att="2"]', b'<el2 att="2"/>')
    assert new == ROOT.replace(b'<el1 att="first"/>', b'<el1 att="first"/><el2 att="2"/>')


def test_insert_first_of_its_name():
    new, _ = insert('root/el2[1][@att="2"]', b'<el2 att="2"/>')
    assert new == ROOT.replace(b'<el2 att="first"/>', b'<el2 att="2"/><el2 att="first"/>')


def test_cannot_insert_what_the_selector_would_not_select():
    with pytest.raises(errors.CannotInsert):
        insert('root/el1[@att="third"]', b'<el1 att="fourth"/>')
    with pytest.raises(errors.CannotInsert):
        insert('root/el1[@att="third"]', b'<el9 att="third"/>')
    with pytest.raises(errors.CannotInsert):
        insert('root/el1[5][@att="x"]', b'<el1 att="x"/>')
    with pytest.raises(errors.CannotInsert):
        insert("root/el1", b'<el1 att="x"/>')  # selects two elements
    with pytest.raises(errors.CannotInsert):
        insert('other[@a="b"]', b'<other a="b"/>')  # a second root


def test_rfc4825_section_7_4_replacing_with_another_uri_is_refused():
    services = b"""<rls-services xmlns="urn:ietf:params:xml:ns:rls-services">
<service uri="sip:good-friends@example.com"><resource-list>http://x/y</resource-list></service>
</rls-services>"""
    body = b'<service uri="sip:mybuddies@example.com"><resource-list>http://x/z</resource-list></service>'
    with pytest.raises(errors.CannotInsert):
        insert(
            'rls-services/service[@uri="sip:good-friends@example.com"]',
            body,
            services,
            "urn:ietf:params:xml:ns:rls-services",
        )


def test_replace_keeps_the_text_around_and_returns_what_was_put():
    body = b'<el2 att="first">\n  <x/>\n</el2>'
    new, created = insert('root/el2[@att="first"]', body)
    assert not created
    assert new == ROOT.replace(b'<el2 att="first"/>', body)
    fragment, content_type = read(new, sel('root/el2[@att="first"]'), "x")
    assert (fragment, content_type) == (body, EL)


def test_replace_the_root_element():
    new, created = insert("root", b"<root><only/></root>")
    assert (new, created) == (b'<?xml version="1.0"?>\n<root><only/></root>', False)


def test_new_elements_keep_their_own_namespace_declarations():
    document = b'<r:root xmlns:r="urn:r" xmlns="urn:d"><item/></r:root>'
    body = b'<r:x xmlns:r="urn:r" a="1"><item/></r:x>'
    new, _ = insert("root/x", body, document, "urn:r")
    assert new == b'<r:root xmlns:r="urn:r" xmlns="urn:d"><item/>' + body + b"</r:root>"


def test_fragments_use_the_prefixes_of_their_new_parent():
    document = b"""<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"
 xmlns:rl="urn:ietf:params:xml:ns:resource-lists"><service uri="sip:s@x"><list name="l">
</list></service></rls-services>"""
    selector = parse_selector(
        'rls-services/service/list/rl:entry[@uri="sip:a@x"]',
        {"rl": "urn:ietf:params:xml:ns:resource-lists"},
        "urn:ietf:params:xml:ns:rls-services",
    )
    new, created = put_element(document, selector, b'<rl:entry uri="sip:a@x"/>', EL)
    assert created and b'<rl:entry uri="sip:a@x"/></list>' in new


def test_get_of_an_element_adds_no_declarations_of_its_ancestors():
    document = b'<a:x xmlns:a="urn:a"><y xmlns="urn:y" xmlns:a="urn:a"><a:z/></y><a:w/></a:x>'
    y, _ = read(document, sel("a:x/y", "xmlns(a=urn:a)", "urn:y"), "x")
    assert y == b'<y xmlns="urn:y" xmlns:a="urn:a"><a:z/></y>'  # its own, even redundant
    w, _ = read(document, sel("a:x/a:w", "xmlns(a=urn:a)"), "x")
    assert w == b"<a:w/>"


def test_rfc4825_section_10_namespace_bindings():
    foo = b"""<foo xmlns="urn:test:default-namespace">
  <ns1:bar xmlns:ns1="urn:test:namespace1-uri" xmlns="urn:test:namespace1-uri">
    <baz/>
    <ns2:baz xmlns:ns2="urn:test:namespace2-uri"/>
  </ns1:bar>
</foo>"""
    selector = sel(
        "df:foo/df2:bar/df2:baz/namespace::*",
        "xmlns(df=urn:test:default-namespace)xmlns(df2=urn:test:namespace1-uri)",
    )
    body, content_type = read(foo, selector, "x")
    assert content_type == "application/xcap-ns+xml"
    assert body == b'<baz xmlns="urn:test:namespace1-uri" xmlns:ns1="urn:test:namespace1-uri"/>'


def test_attributes_read_create_replace():
    value, content_type = read(ROOT, sel("root/el2/@att"), "x")
    assert (value, content_type) == (b'"first"', ATT)
    new, created = put_attribute(ROOT, sel("root/el2/@new"), b"'a &amp; \"b\"'", ATT)
    assert created and b'<el2 att="first" new="a &amp; &quot;b&quot;"/>' in new
    assert read(new, sel("root/el2/@new"), "x")[0] == b'"a &amp; &quot;b&quot;"'
    new, created = put_attribute(ROOT, sel("root/el2/@att"), b'"second"', ATT)
    assert not created and b'<el2 att="second"/>' in new


def test_rfc4825_section_7_7_changing_the_selecting_attribute_is_refused():
    with pytest.raises(errors.CannotInsert):
        put_attribute(ROOT, sel('root/el1[@att="first"]/@att'), b'"other"', ATT)


def test_attribute_bodies_must_be_att_values():
    for body in (b"unquoted", b'"a<b"', b'"a"b"', b'"&bogus;"'):
        with pytest.raises(errors.NotXmlAttValue):
            put_attribute(ROOT, sel("root/el2/@att"), body, ATT)
    with pytest.raises(errors.NotUtf8):
        put_attribute(ROOT, sel("root/el2/@att"), b'"caf\xe9"', ATT)
    with pytest.raises(errors.UnsupportedMediaType):
        put_attribute(ROOT, sel("root/el2/@att"), b'"x"', "text/plain")


def test_missing_parents():
    with pytest.raises(ParentMissing) as caught:
        insert('root/el9/x[@a="b"]', b'<x a="b"/>')
    assert caught.value.matched == 1
    with pytest.raises(ParentMissing) as caught:
        put_attribute(ROOT, sel("root/el1/@att"), b'"x"', ATT)  # two el1: invalid
    assert caught.value.matched == 1


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"text",
        b"<a/><b/>",
        b"<a/>tail",
        b"<a>",
        b'<?xml version="1.0"?><a/>',
        b"<!-- c --><a/>",
        b"<!DOCTYPE a [<!ENTITY x 'y'>]><a/>",
        b"<a>&x;</a>",
        b"<a/></w:fragment><w:fragment>",
        b"<undeclared:a/>",
    ],
)
def test_element_bodies_must_be_one_element(body):
    with pytest.raises(errors.NotXmlFrag):
        insert("root/a", body)


def test_element_body_checks():
    with pytest.raises(errors.NotUtf8):
        insert("root/a", b"<a>caf\xe9</a>")
    with pytest.raises(errors.UnsupportedMediaType):
        put_element(ROOT, sel("root/a"), b"<a/>", "application/xml")


def test_delete_keeps_the_whitespace_around():
    new = delete_node(ROOT, sel('root/el1[@att="second"]'))
    assert new == ROOT.replace(b'<el1 att="second"/>', b"")
    assert delete_node(ROOT, sel("root/el2/@att")) == ROOT.replace(b'<el2 att="first"/>', b"<el2/>")


def test_positional_delete_only_of_the_last():
    with pytest.raises(errors.CannotDelete):
        delete_node(ROOT, sel("root/el1[1]"))  # el1[1] would then be the other el1
    assert b"second" not in delete_node(ROOT, sel("root/el1[2]"))
    with pytest.raises(errors.CannotDelete):
        delete_node(ROOT, sel("root"))
    for missing in ("root/el3", "root/el2/@nope", "root/el1"):
        with pytest.raises(errors.NotFound):
            delete_node(ROOT, sel(missing))


def test_pipeline_order_well_formed_then_utf8():
    with pytest.raises(errors.NotWellFormed):
        parse_document(b"<a><b></a>", max_bytes=100)
    with pytest.raises(errors.NotWellFormed):
        parse_document(b"", max_bytes=100)
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><a>café</a>'.encode("latin-1")
    with pytest.raises(errors.NotUtf8):
        parse_document(latin, max_bytes=100)
    with pytest.raises(errors.NotUtf8):
        parse_document(b"<a>caf\xe9</a>", max_bytes=100)
    with pytest.raises(errors.NotUtf8):
        parse_document("<a/>".encode("utf-16"), max_bytes=100)
    with pytest.raises(errors.ConstraintFailure):
        parse_document(b'<!DOCTYPE a SYSTEM "http://127.0.0.1:9/x.dtd"><a/>', max_bytes=100)
