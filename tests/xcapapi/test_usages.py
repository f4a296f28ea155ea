"""Application usages: each schema takes the RFCs' examples and refuses invalid documents;
the constraints beyond the schemas (RFC 4826 uniqueness) answer with the RFC's reports."""

from pathlib import Path

import pytest
from lxml import etree

from xcapapi import errors, store
from xcapapi.documents import parse_document
from xcapapi.selectors import find_element, parse_selector, parse_xmlns
from xcapapi.usages import all_usages, get
from xcapapi.usages.base import load_schema

DATA = Path(__file__).parent / "data"
ERROR_SCHEMA = load_schema("xcap-error.xsd")


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def validate(auid: str, document: bytes, *, xui="sip:alice@localhost", name="index"):
    usage = get(auid)
    usage.validate(parse_document(document, max_bytes=1 << 20), xui=xui, name=name)


def refused(auid, document, error, **kwargs):
    with pytest.raises(error) as caught:
        validate(auid, document, **kwargs)
    body, content_type = caught.value.body()
    assert content_type == "application/xcap-error+xml"
    assert ERROR_SCHEMA.validate(etree.fromstring(body)), ERROR_SCHEMA.error_log
    return caught.value


# pres-rules (RFC 5025 over RFC 4745) ------------------------------------------------------


@pytest.mark.parametrize("auid", ["pres-rules", "org.openmobilealliance.pres-rules"])
@pytest.mark.parametrize(
    "example", ["rfc5025-example.xml", "rfc4745-example.xml", "oma-pres-rules.xml"]
)
def test_pres_rules_accept_the_rfc_examples(auid, example):
    validate(auid, data(example))


def test_pres_rules_refuse_an_unknown_sub_handling_value():
    document = data("rfc5025-example.xml").replace(b">allow<", b">maybe<")
    error = refused("pres-rules", document, errors.SchemaValidationError)
    assert "maybe" in error.phrase


def test_pres_rules_refuse_an_undefined_element_of_a_known_namespace():
    document = data("rfc5025-example.xml").replace(
        b"pr:provide-activities", b"pr:provide-activitys"
    )
    refused("pres-rules", document, errors.SchemaValidationError)


def test_pres_rules_allow_elements_of_unknown_namespaces():
    document = data("rfc5025-example.xml").replace(
        b"<cr:actions>", b'<cr:actions><v:ring-tone xmlns:v="urn:vendor:x">soft</v:ring-tone>'
    )
    validate("pres-rules", document)


def test_pres_rules_refuse_duplicate_rule_ids_and_rules_without_id():
    document = data("rfc4745-example.xml").replace(b'"y6y55r2"', b'"f3g44r1"')
    refused("pres-rules", document, errors.SchemaValidationError)
    refused(
        "pres-rules",
        data("rfc4745-example.xml").replace(b' id="f3g44r1"', b""),
        errors.SchemaValidationError,
    )


def test_pres_rules_refuse_a_validity_without_until():
    document = data("rfc4745-example.xml").replace(b"<until>2003-12-24T19:00:00+01:00</until>", b"")
    refused("pres-rules", document, errors.SchemaValidationError)


# resource-lists (RFC 4826 §3) -------------------------------------------------------------


def test_resource_lists_accept_the_rfc_example():
    validate("resource-lists", data("rfc4826-resource-lists.xml"))


def test_resource_lists_refuse_an_entry_without_uri():
    document = data("rfc4826-resource-lists.xml").replace(
        b'<entry uri="sip:joe@example.com">', b"<entry>"
    )
    error = refused("resource-lists", document, errors.SchemaValidationError)
    assert "uri" in error.phrase


def test_resource_lists_report_a_duplicate_list_name_with_alternatives():
    document = data("rfc4826-resource-lists.xml").replace(
        b"</resource-lists>", b'<list name="friends"/></resource-lists>'
    )
    error = refused("resource-lists", document, errors.UniquenessFailure)
    [exists] = error.exists
    assert exists.field == "resource-lists/list%5B2%5D/@name"
    assert exists.alt_values[0] == "friends-2"
    # The field selects the offending attribute's element in the submitted document.
    root = etree.fromstring(document)
    steps = parse_selector("resource-lists/list[2]", {}, "urn:ietf:params:xml:ns:resource-lists")
    assert find_element(root, steps.steps).get("name") == "friends"


def test_resource_lists_refuse_duplicate_entries_in_one_list_only():
    twice = b'<entry uri="sip:joe@example.com"/><entry uri="sip:joe@example.com"/>'
    document = data("rfc4826-resource-lists.xml").replace(
        b"</resource-lists>", b'<list name="other">' + twice + b"</list></resource-lists>"
    )
    error = refused("resource-lists", document, errors.UniquenessFailure)
    assert error.exists[0].field.endswith("/entry%5B2%5D/@uri")
    # The same URI in two different lists is fine (joe is in close-friends already).
    once = document.replace(twice, b'<entry uri="sip:joe@example.com"/>')
    validate("resource-lists", once)


def test_resource_lists_check_entry_ref_and_external_uris():
    absolute_ref = data("rfc4826-resource-lists.xml").replace(
        b'ref="resource-lists/', b'ref="http://xcap.example.com/resource-lists/'
    )
    refused("resource-lists", absolute_ref, errors.ConstraintFailure)
    relative_anchor = data("rfc4826-resource-lists.xml").replace(
        b'anchor="http://xcap.example.org/', b'anchor="'
    )
    refused("resource-lists", relative_anchor, errors.ConstraintFailure)


# rls-services (RFC 4826 §4) -----------------------------------------------------------------


@pytest.mark.django_db
def test_rls_services_accept_the_rfc_example():
    validate("rls-services", data("rfc4826-rls-services.xml"))


@pytest.mark.django_db
def test_rls_services_refuse_a_duplicate_service_uri_in_one_document():
    document = data("rfc4826-rls-services.xml").replace(
        b"sip:marketing@example.com", b"sip:mybuddies@example.com"
    )
    error = refused("rls-services", document, errors.UniquenessFailure)
    [exists] = error.exists
    assert exists.field == "rls-services/service%5B2%5D/@uri"
    assert exists.alt_values[0] == "sip:mybuddies-2@example.com"


@pytest.mark.django_db
def test_rls_services_uris_are_unique_across_users():
    store.save_document(
        auid="rls-services",
        xui="sip:bob@localhost",
        name="index",
        body=data("rfc4826-rls-services.xml"),
    )
    error = refused("rls-services", data("rfc4826-rls-services.xml"), errors.UniquenessFailure)
    assert len(error.exists) == 2
    # Bob replacing his own document does not clash with itself.
    validate("rls-services", data("rfc4826-rls-services.xml"), xui="sip:bob@localhost")


@pytest.mark.django_db
def test_rls_services_global_index_gathers_every_users_services():
    store.save_document(
        auid="rls-services",
        xui="sip:bob@localhost",
        name="index",
        body=data("rfc4826-rls-services.xml"),
    )
    index = get("rls-services").global_document("index")
    get("rls-services").validate_schema(etree.fromstring(index))
    uris = [el.get("uri") for el in etree.fromstring(index)]
    assert uris == ["sip:mybuddies@example.com", "sip:marketing@example.com"]
    assert get("rls-services").global_document("other") is None


@pytest.mark.django_db
def test_rls_services_refuse_a_relative_resource_list_and_two_lists():
    relative = data("rfc4826-rls-services.xml").replace(b">http://xcap.example.com/", b">/")
    refused("rls-services", relative, errors.ConstraintFailure)
    two_lists = data("rfc4826-rls-services.xml").replace(
        b'<list name="marketing">', b'<list name="marketing"/><list name="marketing">'
    )
    refused("rls-services", two_lists, errors.SchemaValidationError)


# pidf-manipulation (RFC 4827) and xcap-caps (RFC 4825 §12) --------------------------------


def test_pidf_manipulation_accepts_a_pidf_with_rpid():
    validate("pidf-manipulation", data("rfc4827-pidf.xml"))


@pytest.mark.parametrize(
    "change",
    [
        (b"<basic>open</basic>", b"<basic>half-open</basic>"),
        (b' entity="sip:alice@localhost"', b""),
        (b'<tuple id="sg89ae">', b"<tuple>"),
        (b'priority="0.8"', b'priority="2"'),
    ],
)
def test_pidf_manipulation_refuses_invalid_pidf(change):
    refused(
        "pidf-manipulation", data("rfc4827-pidf.xml").replace(*change), errors.SchemaValidationError
    )


def test_xcap_caps_lists_every_auid_and_namespace():
    caps = get("xcap-caps").global_document("index")
    validate("xcap-caps", caps, xui=None)
    root = etree.fromstring(caps)
    ns = {"c": "urn:ietf:params:xml:ns:xcap-caps"}
    auids = root.xpath("c:auids/c:auid/text()", namespaces=ns)
    assert sorted(auids) == sorted(u.auid for u in all_usages())
    namespaces = root.xpath("c:namespaces/c:namespace/text()", namespaces=ns)
    for namespace in (
        "urn:ietf:params:xml:ns:xcap-caps",
        "urn:ietf:params:xml:ns:pres-rules",
        "urn:ietf:params:xml:ns:common-policy",
        "urn:ietf:params:xml:ns:resource-lists",
        "urn:ietf:params:xml:ns:rls-services",
        "urn:ietf:params:xml:ns:pidf",
    ):
        assert namespace in namespaces


def test_usage_table():
    table = {u.auid: (u.mime_type, u.default_namespace) for u in all_usages()}
    assert table["pres-rules"] == (
        "application/auth-policy+xml",
        "urn:ietf:params:xml:ns:pres-rules",
    )
    assert table["org.openmobilealliance.pres-rules"][1] == "urn:ietf:params:xml:ns:common-policy"
    assert table["resource-lists"][0] == "application/resource-lists+xml"
    assert table["rls-services"][0] == "application/rls-services+xml"
    assert table["pidf-manipulation"][0] == "application/pidf+xml"
    assert table["xcap-caps"][0] == "application/xcap-caps+xml"


@pytest.mark.parametrize(
    "error",
    [
        errors.NotWellFormed("x"),
        errors.NotUtf8(),
        errors.NotXmlFrag(),
        errors.NotXmlAttValue(),
        errors.SchemaValidationError('a "quoted" <phrase>'),
        errors.CannotInsert(),
        errors.CannotDelete(),
        errors.ConstraintFailure(),
        errors.NoParent(ancestor="http://x/a?b&c"),
        errors.UniquenessFailure([errors.Exists("a/@b", ("x", "y")), errors.Exists("c")]),
    ],
)
def test_conflict_reports_follow_the_xcap_error_schema(error):
    body, content_type = error.body()
    assert error.status == 409 and content_type == "application/xcap-error+xml"
    assert ERROR_SCHEMA.validate(etree.fromstring(body)), ERROR_SCHEMA.error_log


def test_selectors_of_reports_parse_back():
    assert parse_xmlns("") == {}
