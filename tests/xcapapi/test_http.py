"""XCAP over real HTTP against the real server: documents, elements, attributes, namespace
bindings, ETags and every 409 of RFC 4825 §8, each leaving the stored document unchanged."""

import pytest
from lxml import etree

from tests.xcapapi.conftest import assert_conflict

RL = "resource-lists/users/sip:alice@localhost/index"
RL_MIME = "application/resource-lists+xml"
EL = "application/xcap-el+xml"
ATT = "application/xcap-att+xml"
# RFC 4825 §13, Figure 24 (Bill's first document; here it is alice's)
FIGURE_24 = b"""<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="friends">
  </list>
</resource-lists>"""
BOB = b"""<entry uri="sip:bob@example.com">
    <display-name>Bob Jones</display-name>
  </entry>"""
CLOSE_FRIENDS = b"""<list name="close-friends">
    <entry uri="sip:joe@example.com">
      <display-name>Joe Smith</display-name>
    </entry>
    <entry uri="sip:nancy@example.com">
      <display-name>Nancy Gross</display-name>
    </entry>
    <entry uri="sip:petri@example.com">
      <display-name>Petri Aukia</display-name>
    </entry>
  </list>"""
PRES_RULES = b"""<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy"
            xmlns:pr="urn:ietf:params:xml:ns:pres-rules">
  <cr:rule id="allow-bob">
    <cr:conditions><cr:identity><cr:one id="sip:bob@localhost"/></cr:identity></cr:conditions>
    <cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions>
  </cr:rule>
</cr:ruleset>"""


@pytest.fixture
def alice(client):
    alice = client("alice")
    alice.delete(RL)
    reply = alice.put(RL, FIGURE_24, RL_MIME)
    assert reply.status == 201
    return alice


def unchanged(alice, path, body, etag):
    """The stored document is still exactly `body` with ETag `etag`."""
    reply = alice.get(path)
    assert (reply.status, reply.body, reply.etag) == (200, body, etag)


def test_document_lifecycle(client):
    alice = client("alice")
    alice.delete(RL)
    created = alice.put(RL, FIGURE_24, RL_MIME)
    assert created.status == 201 and created.etag and created.body == b""
    assert created.header("Location").endswith("/xcap-root/" + RL)
    fetched = alice.get(RL)
    assert fetched.status == 200
    assert fetched.body == FIGURE_24  # byte for byte
    assert fetched.etag == created.etag
    assert fetched.header("Content-Type") == RL_MIME
    assert fetched.header("Cache-Control") == "no-cache"
    replaced = alice.put(RL, FIGURE_24.replace(b"friends", b"family"), RL_MIME)
    assert replaced.status == 200 and replaced.etag != created.etag
    deleted = alice.delete(RL)
    assert deleted.status == 200 and deleted.etag is None
    assert alice.get(RL).status == 404
    assert alice.delete(RL).status == 404


def test_rfc4825_section_13_walkthrough_with_raw_quotes_and_brackets(alice):
    friends = RL + '/~~/resource-lists/list[@name="friends"]'
    reply = alice.put(friends + "/entry", BOB, EL)
    assert reply.status == 201
    # Figure 28: the entry lands inside the list, after its whitespace.
    expected = FIGURE_24.replace(b'friends">\n  </list>', b'friends">\n  ' + BOB + b"</list>")
    fetched = alice.get(RL)
    assert fetched.body == expected and fetched.etag == reply.etag
    # The same element, by an encoded selector, comes back as it was put.
    element = alice.get(RL + "/~~/resource-lists/list%5b@name=%22friends%22%5d/entry")
    assert (element.status, element.body) == (200, BOB)
    assert element.header("Content-Type") == EL
    assert alice.put(friends + '/list[@name="close-friends"]', CLOSE_FRIENDS, EL).status == 201
    petri = RL + '/~~/resource-lists/list/list/entry[@uri="sip:petri@example.com"]'
    deleted = alice.delete(petri)
    assert deleted.status == 200 and deleted.etag
    assert alice.get(petri).status == 404
    nancy = alice.get(RL + "/~~/resource-lists/list/list/entry[2]/@uri")
    assert (nancy.status, nancy.body) == (200, b'"sip:nancy@example.com"')
    assert nancy.header("Content-Type") == ATT
    assert nancy.etag == deleted.etag


def test_elements_and_attributes_created_replaced_deleted(alice):
    list_ = RL + '/~~/resource-lists/list[@name="friends"]'
    first = alice.put(
        list_ + '/entry[@uri="sip:bob@localhost"]', b'<entry uri="sip:bob@localhost"/>', EL
    )
    assert first.status == 201
    again = alice.put(
        list_ + '/entry[@uri="sip:bob@localhost"]',
        b'<entry uri="sip:bob@localhost"><display-name>Bob</display-name></entry>',
        EL,
    )
    assert again.status == 200 and again.etag != first.etag  # a write changes the ETag
    attribute = list_ + '/entry[@uri="sip:bob@localhost"]/@xml:lang'
    assert alice.put(list_ + "/@name", b'"friends"', ATT).status == 200
    other = alice.put(list_ + "/entry/display-name/@xml:lang", b'"en"', ATT)
    assert other.status == 201
    assert alice.get(list_ + "/entry/display-name/@xml:lang").body == b'"en"'
    assert alice.delete(list_ + "/entry/display-name/@xml:lang").status == 200
    assert alice.get(attribute).status == 404
    assert alice.delete(list_ + '/entry[@uri="sip:bob@localhost"]').status == 200
    assert alice.get(RL).body == FIGURE_24


def test_namespace_bindings_are_read_only(alice):
    path = RL + "/~~/resource-lists/list/namespace::*"
    reply = alice.get(path)
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/xcap-ns+xml"
    assert reply.body == b'<list xmlns="urn:ietf:params:xml:ns:resource-lists"/>'
    for method in ("PUT", "DELETE"):
        refused = alice.request(
            method, path, b"<x/>" if method == "PUT" else b"", {"Content-Type": EL}
        )
        assert refused.status == 405 and "GET" in refused.header("Allow")


def test_prefixed_selectors_with_xmlns_query(client):
    alice = client("alice")
    path = "pres-rules/users/sip:alice@localhost/index"
    assert alice.put(path, PRES_RULES, "application/auth-policy+xml").status in (200, 201)
    selector = '/~~/cp:ruleset/cp:rule[@id="allow-bob"]/cp:actions/sub-handling'
    query = "?xmlns(cp=urn:ietf:params:xml:ns:common-policy)"
    reply = alice.get(path + selector + query)
    assert (reply.status, reply.body) == (200, b"<pr:sub-handling>allow</pr:sub-handling>")
    changed = alice.put(path + selector + query, b"<pr:sub-handling>block</pr:sub-handling>", EL)
    assert changed.status == 200
    assert b"<pr:sub-handling>block</pr:sub-handling>" in alice.get(path).body
    assert alice.get(path + selector).status == 400  # cp: bound nowhere
    oma = "org.openmobilealliance.pres-rules/users/sip:alice@localhost/index"
    assert alice.put(oma, PRES_RULES, "application/auth-policy+xml").status in (200, 201)
    # The OMA usage's default document namespace is common-policy.
    assert alice.get(oma + '/~~/ruleset/rule[@id="allow-bob"]/@id').body == b'"allow-bob"'


# 409 conflict reports ---------------------------------------------------------------------


def test_not_well_formed_and_not_utf8(alice):
    etag = alice.get(RL).etag
    assert_conflict(
        alice.put(RL, b"<resource-lists><list></resource-lists>", RL_MIME), "not-well-formed"
    )
    latin = FIGURE_24.replace(b"UTF-8", b"ISO-8859-1").replace(b"friends", b"amis \xe9")
    assert_conflict(alice.put(RL, latin, RL_MIME), "not-utf-8")
    assert_conflict(alice.put(RL, FIGURE_24.replace(b"friends", b"\xff\xfe"), RL_MIME), "not-utf-8")
    unchanged(alice, RL, FIGURE_24, etag)


def test_schema_validation_error(alice):
    etag = alice.get(RL).etag
    no_uri = FIGURE_24.replace(b"\n  </list>", b"<entry/></list>")
    assert_conflict(alice.put(RL, no_uri, RL_MIME), "schema-validation-error")
    element = RL + '/~~/resource-lists/list[@name="friends"]/entry'
    assert_conflict(alice.put(element, b"<entry/>", EL), "schema-validation-error")
    rules = "pres-rules/users/sip:alice@localhost/maybe"
    bad = PRES_RULES.replace(b">allow<", b">perhaps<")
    assert_conflict(alice.put(rules, bad, "application/auth-policy+xml"), "schema-validation-error")
    assert alice.get(rules).status == 404
    unchanged(alice, RL, FIGURE_24, etag)


def test_no_parent_names_the_closest_ancestor(alice):
    etag = alice.get(RL).etag
    reply = alice.put(RL + '/~~/resource-lists/list[@name="nope"]/entry', BOB, EL)
    ancestor = assert_conflict(reply, "no-parent")[0]
    assert ancestor.text.endswith("/xcap-root/" + RL + "/~~/resource-lists")
    missing_doc = "resource-lists/users/sip:alice@localhost/other/~~/resource-lists/list"
    ancestor = assert_conflict(alice.put(missing_doc, b'<list name="x"/>', EL), "no-parent")[0]
    assert ancestor.text.endswith("/xcap-root/resource-lists/users/sip:alice@localhost/")
    attribute = RL + '/~~/resource-lists/list[@name="nope"]/@name'
    assert_conflict(alice.put(attribute, b'"x"', ATT), "no-parent")
    unchanged(alice, RL, FIGURE_24, etag)


def test_cannot_insert_and_cannot_delete(alice):
    friends = RL + '/~~/resource-lists/list[@name="friends"]'
    alice.put(friends + "/entry[1]", b'<entry uri="sip:a@x"/>', EL)
    alice.put(friends + '/entry[@uri="sip:b@x"]', b'<entry uri="sip:b@x"/>', EL)
    before = alice.get(RL)
    assert_conflict(
        alice.put(friends + '/entry[@uri="sip:c@x"]', b'<entry uri="sip:d@x"/>', EL),
        "cannot-insert",
    )
    assert_conflict(alice.put(friends + "/@name", b'"family"', ATT), "cannot-insert")
    assert_conflict(alice.delete(friends + "/entry[1]"), "cannot-delete")
    unchanged(alice, RL, before.body, before.etag)


def test_not_xml_frag_and_not_xml_att_value(alice):
    etag = alice.get(RL).etag
    friends = RL + '/~~/resource-lists/list[@name="friends"]'
    for body in (b"<entry uri='sip:a@x'/><entry uri='sip:b@x'/>", b"just text", b"<entry>"):
        assert_conflict(alice.put(friends + "/entry", body, EL), "not-xml-frag")
    for body in (b"no quotes", b'"a<b"', b"'x\""):
        assert_conflict(alice.put(friends + "/@name", body, ATT), "not-xml-att-value")
    unchanged(alice, RL, FIGURE_24, etag)


def test_uniqueness_failure_across_users_suggests_free_uris(client):
    services = b"""<?xml version="1.0" encoding="UTF-8"?>
<rls-services xmlns="urn:ietf:params:xml:ns:rls-services">
 <service uri="sip:friends@localhost">
  <resource-list>http://xcap.example.com/resource-lists/users/sip:bob@localhost/index</resource-list>
 </service>
</rls-services>"""
    bob, alice = client("bob"), client("alice")
    assert bob.put(
        "rls-services/users/sip:bob@localhost/index", services, "application/rls-services+xml"
    ).status in (200, 201)
    reply = alice.put(
        "rls-services/users/sip:alice@localhost/index", services, "application/rls-services+xml"
    )
    exists = assert_conflict(reply, "uniqueness-failure")[0]
    assert exists.get("field") == "rls-services/service/@uri"
    alternatives = [alt.text for alt in exists]
    assert alternatives[0] == "sip:friends-2@localhost"
    assert alice.get("rls-services/users/sip:alice@localhost/index").status == 404
    index = alice.get("rls-services/global/index")
    assert index.status == 200 and b'uri="sip:friends@localhost"' in index.body
    assert (
        alice.put("rls-services/global/index", services, "application/rls-services+xml").status
        == 405
    )


def test_constraint_failure(alice):
    etag = alice.get(RL).etag
    absolute_ref = FIGURE_24.replace(b"\n  </list>", b'<entry-ref ref="http://x/y"/></list>')
    assert_conflict(alice.put(RL, absolute_ref, RL_MIME), "constraint-failure")
    unchanged(alice, RL, FIGURE_24, etag)


# ETags and preconditions ----------------------------------------------------------------


def test_etags_quoted_unquoted_and_stale(alice):
    etag = alice.get(RL).etag
    assert alice.get(RL, if_none_match=f'"{etag}"').status == 304
    not_modified = alice.get(RL, if_none_match=etag)  # unquoted, as SIP SIMPLE clients send
    assert not_modified.status == 304 and not_modified.etag == etag and not_modified.body == b""
    assert alice.get(RL, if_none_match=f'W/"{etag}"').status == 304
    assert alice.get(RL, if_none_match='"other"').status == 200
    assert alice.get(RL, if_match=etag).status == 200
    stale = alice.put(RL, FIGURE_24.replace(b"friends", b"x"), RL_MIME, if_match='"stale"')
    assert stale.status == 412 and stale.etag == etag
    entry = RL + '/~~/resource-lists/list/entry[@uri="sip:z@x"]'
    assert alice.put(entry, b'<entry uri="sip:z@x"/>', EL, if_match="stale").status == 412
    assert alice.delete(RL, if_match='"stale"').status == 412
    assert alice.put(RL, FIGURE_24, RL_MIME, if_none_match="*").status == 412
    unchanged(alice, RL, FIGURE_24, etag)
    changed = alice.put(entry, b'<entry uri="sip:z@x"/>', EL, if_match=etag)  # unquoted
    assert changed.status == 201 and changed.etag != etag
    assert alice.delete(entry, if_match=f'"{changed.etag}"').status == 200


def test_conditional_creation(client):
    alice = client("alice")
    path = "resource-lists/users/sip:alice@localhost/conditional"
    alice.delete(path)
    assert alice.put(path, FIGURE_24, RL_MIME, if_match="*").status == 412
    assert alice.get(path, if_match="*").status == 404
    assert alice.put(path, FIGURE_24, RL_MIME, if_none_match="*").status == 201
    assert alice.delete(path).status == 200


# Other statuses -------------------------------------------------------------------------


def test_unsupported_media_type_unknown_auid_post_and_global_writes(alice):
    assert alice.put(RL, FIGURE_24, "application/xml").status == 415
    element = RL + '/~~/resource-lists/list[@name="friends"]/entry'
    assert alice.put(element, BOB, "text/xml").status == 415
    assert alice.get("no-such-auid/users/sip:alice@localhost/index").status == 404
    assert alice.get("resource-lists/elsewhere/sip:alice@localhost/index").status == 404
    assert alice.get("xcap-caps/users/sip:alice@localhost/index").status == 404
    posted = alice.request("POST", RL, FIGURE_24, {"Content-Type": RL_MIME})
    assert posted.status == 405 and posted.header("Allow") == "GET, PUT, DELETE"
    caps = alice.put("xcap-caps/global/index", b"<x/>", "application/xcap-caps+xml")
    assert caps.status == 405 and caps.header("Allow") == "GET"
    assert alice.delete("xcap-caps/global/index").status == 405


def test_xcap_caps(client):
    reply = client("bob").get("xcap-caps/global/index")
    assert reply.status == 200 and reply.etag
    assert reply.header("Content-Type") == "application/xcap-caps+xml"
    auids = etree.fromstring(reply.body).xpath(
        "//c:auid/text()", namespaces={"c": "urn:ietf:params:xml:ns:xcap-caps"}
    )
    assert {
        "pres-rules",
        "resource-lists",
        "rls-services",
        "pidf-manipulation",
        "xcap-caps",
        "org.openmobilealliance.pres-rules",
    } <= set(auids)
    assert client("bob").get("xcap-caps/global/index", if_none_match=reply.etag).status == 304
    node = client("bob").get("xcap-caps/global/index/~~/xcap-caps/auids/auid[1]")
    assert node.status == 200 and node.body.startswith(b"<auid")


def test_pidf_manipulation_document(client):
    alice = client("alice")
    pidf = b"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@localhost">
  <tuple id="t1"><status><basic>open</basic></status></tuple>
</presence>"""
    path = "pidf-manipulation/users/sip:alice@localhost/index"
    assert alice.put(path, pidf, "application/pidf+xml").status in (200, 201)
    basic = alice.get(path + '/~~/presence/tuple[@id="t1"]/status/basic')
    assert basic.body == b"<basic>open</basic>"
    assert (
        alice.put(
            path + '/~~/presence/tuple[@id="t1"]/status/basic', b"<basic>closed</basic>", EL
        ).status
        == 200
    )
