"""RFC 5025 / RFC 4745 rule evaluation and transformations, on documents in memory."""

from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from xcapapi import presrules

HEAD = (
    '<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy" '
    'xmlns:pr="urn:ietf:params:xml:ns:pres-rules">'
)


def ruleset(*rules: str):
    return etree.fromstring(HEAD + "".join(rules) + "</cp:ruleset>")


def rule(rid, conditions="", handling="allow", transformations=None):
    parts = [f'<cp:rule id="{rid}"><cp:conditions>{conditions}</cp:conditions>']
    parts.append(f"<cp:actions><pr:sub-handling>{handling}</pr:sub-handling></cp:actions>")
    if transformations is not None:
        parts.append(f"<cp:transformations>{transformations}</cp:transformations>")
    return "".join(parts) + "</cp:rule>"


def one(uri):
    return f'<cp:identity><cp:one id="{uri}"/></cp:identity>'


def test_identity_one_matches_only_that_watcher():
    rules = ruleset(rule("a", one("sip:bob@example.com")))
    assert presrules.evaluate(rules, "sip:bob@EXAMPLE.com").handling == "allow"
    assert presrules.evaluate(rules, "sip:carol@example.com").handling is None


def test_many_with_domain_and_exceptions():
    many = (
        '<cp:identity><cp:many domain="example.com">'
        '<cp:except id="sip:spam@example.com"/></cp:many></cp:identity>'
    )
    rules = ruleset(rule("a", many))
    assert presrules.evaluate(rules, "sip:bob@example.com").handling == "allow"
    assert presrules.evaluate(rules, "sip:spam@example.com").handling is None
    assert presrules.evaluate(rules, "sip:bob@other.org").handling is None


def test_many_without_domain_matches_everyone_but_excepted_domains():
    many = '<cp:identity><cp:many><cp:except domain="evil.org"/></cp:many></cp:identity>'
    rules = ruleset(rule("a", many))
    assert presrules.evaluate(rules, "sip:x@anywhere.net").handling == "allow"
    assert presrules.evaluate(rules, "sip:x@evil.org").handling is None


def test_rules_combine_to_the_maximum_not_the_first_match():
    # RFC 4745 §10: block (0) < confirm (10) < polite-block (20) < allow (30).
    rules = ruleset(
        rule("first", "", "block"),
        rule("second", one("sip:bob@example.com"), "allow"),
    )
    verdict = presrules.evaluate(rules, "sip:bob@example.com")
    assert verdict.handling == "allow" and verdict.matched == ("first", "second")
    assert presrules.evaluate(rules, "sip:carol@example.com").handling == "block"


@pytest.mark.parametrize("handling", ["block", "confirm", "polite-block", "allow"])
def test_each_sub_handling_value_is_read(handling):
    assert presrules.evaluate(ruleset(rule("a", "", handling)), "sip:b@x").handling == handling


def test_validity_window():
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    window = (
        "<cp:validity><cp:from>2026-11-26T10:00:00Z</cp:from>"
        "<cp:until>2026-11-26T13:00:00Z</cp:until></cp:validity>"
    )
    rules = ruleset(rule("a", window))
    assert presrules.evaluate(rules, "sip:b@x", now=now).handling == "allow"
    later = now + timedelta(hours=2)
    assert presrules.evaluate(rules, "sip:b@x", now=later).handling is None


def test_sphere_condition_compares_with_the_presentitys_sphere():
    rules = ruleset(rule("a", '<cp:sphere value="work"/>'))
    assert presrules.evaluate(rules, "sip:b@x", sphere="work").handling == "allow"
    assert presrules.evaluate(rules, "sip:b@x", sphere="home").handling is None
    assert presrules.evaluate(rules, "sip:b@x", sphere=None).handling is None


def test_unknown_condition_never_matches():
    rules = ruleset(rule("a", '<x:weird xmlns:x="urn:example"/>'))
    assert presrules.evaluate(rules, "sip:b@x").handling is None


def test_no_ruleset_and_no_transformations():
    assert presrules.evaluate(None, "sip:b@x").handling is None
    assert presrules.evaluate(ruleset(rule("a")), "sip:b@x").permissions is None


PIDF = b"""<presence xmlns="urn:ietf:params:xml:ns:pidf"
  xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
  xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
  xmlns:x="urn:example:ext" entity="sip:alice@example.com">
  <tuple id="sip-phone"><status><basic>open</basic></status>
    <contact>sip:alice@192.0.2.1</contact><rpid:class>work</rpid:class>
    <note>desk phone</note></tuple>
  <tuple id="im"><status><basic>open</basic></status><contact>im:alice@example.com</contact></tuple>
  <note>top note</note>
  <dm:person id="p1"><rpid:activities><rpid:meeting/></rpid:activities>
    <rpid:mood><rpid:happy/></rpid:mood><dm:note>in a meeting</dm:note>
    <rpid:place-type><rpid:office/></rpid:place-type><x:secret>42</x:secret></dm:person>
  <dm:device id="d1"><dm:deviceID>urn:uuid:d1</dm:deviceID><rpid:class>work</rpid:class></dm:device>
  <dm:device id="d2"><dm:deviceID>urn:uuid:d2</dm:deviceID></dm:device>
</presence>"""


IM_ONLY = "<pr:provide-services><pr:occurrence-id>im</pr:occurrence-id></pr:provide-services>"


def view(transformations: str) -> etree._Element:
    verdict = presrules.evaluate(ruleset(rule("a", "", "allow", transformations)), "sip:b@x")
    return presrules.apply(verdict.permissions, etree.fromstring(PIDF))


def ids(root, local):
    return [
        e.get("id") for e in root if isinstance(e.tag, str) and etree.QName(e).localname == local
    ]


def texts(root, path):
    ns = {"p": presrules.PIDF, "dm": presrules.DM, "r": presrules.RPID, "x": "urn:example:ext"}
    return root.xpath(path, namespaces=ns)


ALL = (
    "<pr:provide-services><pr:all-services/></pr:provide-services>"
    "<pr:provide-persons><pr:all-persons/></pr:provide-persons>"
    "<pr:provide-devices><pr:all-devices/></pr:provide-devices>"
)


def test_empty_transformations_withhold_everything_but_the_root():
    root = view("")
    assert ids(root, "tuple") == [] and ids(root, "person") == [] and ids(root, "device") == []


def test_provide_services_by_occurrence_id_scheme_and_uri():
    assert ids(view(IM_ONLY), "tuple") == ["im"]
    scheme = (
        "<pr:provide-services><pr:service-uri-scheme>sip</pr:service-uri-scheme>"
        "</pr:provide-services>"
    )
    assert ids(view(scheme), "tuple") == ["sip-phone"]
    uri = (
        "<pr:provide-services><pr:service-uri>im:alice@example.com</pr:service-uri>"
        "</pr:provide-services>"
    )
    assert ids(view(uri), "tuple") == ["im"]
    by_class = "<pr:provide-services><pr:class>work</pr:class></pr:provide-services>"
    assert ids(view(by_class), "tuple") == ["sip-phone"]


def test_provide_persons_and_devices():
    root = view("<pr:provide-persons><pr:all-persons/></pr:provide-persons>")
    assert ids(root, "person") == ["p1"] and ids(root, "tuple") == [] and ids(root, "device") == []
    devices = "<pr:provide-devices><pr:deviceID>urn:uuid:d2</pr:deviceID></pr:provide-devices>"
    assert ids(view(devices), "device") == ["d2"]


def test_attributes_are_withheld_unless_provided():
    root = view(ALL)
    assert texts(root, "//r:activities") == [] and texts(root, "//r:mood") == []
    assert texts(root, "//p:note") == [] and texts(root, "//dm:note") == []
    assert texts(root, "//x:secret") == []
    assert texts(root, "//p:basic/text()") == ["open", "open"]  # basic status always kept
    assert texts(root, "//p:contact/text()") != []


def test_provide_activities_keeps_activities_only():
    root = view(ALL + "<pr:provide-activities>true</pr:provide-activities>")
    assert len(texts(root, "//r:activities")) == 1
    assert texts(root, "//r:mood") == [] and texts(root, "//dm:note") == []


def test_provide_note_keeps_notes_everywhere():
    root = view(ALL + "<pr:provide-note>true</pr:provide-note>")
    assert texts(root, "//p:note/text()") == ["desk phone", "top note"]
    assert texts(root, "//dm:note/text()") == ["in a meeting"]
    assert texts(root, "//r:activities") == []


def test_provide_false_is_not_a_permission():
    root = view(ALL + "<pr:provide-mood>false</pr:provide-mood>")
    assert texts(root, "//r:mood") == []


def test_provide_unknown_attribute_and_all_attributes():
    unknown = ALL + '<pr:provide-unknown-attribute ns="urn:example:ext" name="secret"/>'
    assert texts(view(unknown), "//x:secret/text()") == ["42"]
    everything = view(ALL + "<pr:provide-all-attributes/>")
    assert texts(everything, "//r:mood") != [] and texts(everything, "//x:secret") != []


def test_transformations_of_several_rules_are_united():
    rules = ruleset(
        rule(
            "a",
            "",
            "allow",
            "<pr:provide-services><pr:occurrence-id>im</pr:occurrence-id></pr:provide-services>",
        ),
        rule("b", "", "confirm", "<pr:provide-persons><pr:all-persons/></pr:provide-persons>"),
    )
    verdict = presrules.evaluate(rules, "sip:b@x")
    root = presrules.apply(verdict.permissions, etree.fromstring(PIDF))
    assert verdict.handling == "allow"
    assert ids(root, "tuple") == ["im"] and ids(root, "person") == ["p1"]


def test_current_sphere():
    doc = etree.fromstring(
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf" '
        b'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
        b'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:a@x"><dm:person id="p">'
        b"<rpid:sphere><rpid:work/></rpid:sphere></dm:person></presence>"
    )
    assert presrules.current_sphere(doc) == "work"
