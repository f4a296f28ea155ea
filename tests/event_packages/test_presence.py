"""The presence package (RFC 3856, PIDF RFC 3863, RPID RFC 4480) and the package registry."""

import pytest
from lxml import etree

from sipws.event_packages import base
from sipws.event_packages.base import BadBody, EventPackage, Publication
from sipws.event_packages.presence import DM_NS, PIDF_NS, RPID_NS, PresencePackage, presence

PIDF = "application/pidf+xml"
NS = {"p": PIDF_NS, "dm": DM_NS, "rpid": RPID_NS}

# Every PIDF core element of RFC 3863 section 4, with an extension in each place the
# format leaves open for one.
CORE_DOCUMENT = """\
<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
          xmlns:ext="urn:example:presence-extension"
          entity="pres:alice@example.org">
  <tuple id="desk-phone">
    <status>
      <basic>open</basic>
      <ext:location>office</ext:location>
    </status>
    <ext:feature>video</ext:feature>
    <contact priority="0.75">sip:alice@desk.example.org</contact>
    <note xml:lang="en">At my desk</note>
    <timestamp>2024-03-01T09:30:00Z</timestamp>
  </tuple>
  <tuple id="mobile">
    <status><basic>closed</basic></status>
  </tuple>
  <note xml:lang="en">Working from the office</note>
  <note xml:lang="fr">Au bureau aujourd'hui, caf\u00e9 \u00e0 10 h</note>
  <ext:extra>kept</ext:extra>
</presence>
""".encode()

# Rich presence: RPID on a data-model person and device (RFC 4479, RFC 4480), plus
# capabilities in a tuple. None of it is the PIDF core; all of it must survive.
RPID_DOCUMENT = b"""\
<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
          xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
          xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
          xmlns:caps="urn:ietf:params:xml:ns:pidf:caps"
          entity="pres:bob@example.net">
  <tuple id="bob-softphone">
    <status><basic>open</basic></status>
    <caps:servcaps><caps:audio>true</caps:audio><caps:video>false</caps:video></caps:servcaps>
    <rpid:class>work</rpid:class>
    <dm:deviceID>urn:uuid:4f1d0c9e-7a2b-4c61-9d3e-1b2a3c4d5e6f</dm:deviceID>
    <contact priority="1">sip:bob@pc.example.net</contact>
  </tuple>
  <dm:person id="bob">
    <rpid:activities><rpid:meeting/></rpid:activities>
    <rpid:mood><rpid:bored/></rpid:mood>
    <rpid:place-type><rpid:office/></rpid:place-type>
    <rpid:privacy><rpid:text/></rpid:privacy>
    <rpid:sphere><rpid:work/></rpid:sphere>
    <rpid:time-offset>60</rpid:time-offset>
    <rpid:user-input idle-threshold="600" last-input="2024-03-01T09:10:00Z">idle</rpid:user-input>
    <dm:note>In a meeting until noon</dm:note>
    <dm:timestamp>2024-03-01T09:12:00Z</dm:timestamp>
  </dm:person>
  <dm:device id="pc-1">
    <rpid:user-input>active</rpid:user-input>
    <dm:deviceID>urn:uuid:4f1d0c9e-7a2b-4c61-9d3e-1b2a3c4d5e6f</dm:deviceID>
  </dm:device>
</presence>
"""


def doc(inner: str, entity: str = "sip:alice@example.org") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf"'
        ' xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"'
        ' xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"'
        f' entity="{entity}">{inner}</presence>'
    ).encode()


def tuple_(tuple_id: str, basic: str = "open", extra: str = "") -> str:
    return f'<tuple id="{tuple_id}"><status><basic>{basic}</basic></status>{extra}</tuple>'


def publication(body: bytes, etag: str, received_time: float) -> Publication:
    return Publication(
        body=body, content_type=PIDF, etag=etag, received_time=received_time, sender=""
    )


def parsed(body: bytes) -> etree._Element:
    return etree.fromstring(body)


# -- validate -------------------------------------------------------------------------


def test_core_document_validates():
    presence.validate(CORE_DOCUMENT, PIDF)


def test_rpid_document_validates_and_passes_through_unchanged():
    presence.validate(RPID_DOCUMENT, PIDF)
    state = presence.aggregate("sip:bob@example.net", [publication(RPID_DOCUMENT, "e1", 1.0)])
    assert state == RPID_DOCUMENT
    assert presence.notify_body(state, None) == RPID_DOCUMENT


def test_content_type_is_compared_as_a_media_type():
    presence.validate(CORE_DOCUMENT, "Application/PIDF+XML; charset=UTF-8")


def test_extension_children_may_come_before_the_core_ones():
    presence.validate(doc('<dm:person id="p"/>' + tuple_("t1") + "<note>n</note>"), PIDF)
    presence.validate(
        doc('<tuple id="7"><contact>sip:a@b</contact><status/><rpid:class>x</rpid:class></tuple>'),
        PIDF,
    )


@pytest.mark.parametrize(
    ("content_type", "body", "status", "reason"),
    [
        ("application/xpidf+xml", CORE_DOCUMENT, 415, "Unsupported Media Type"),
        ("text/plain", CORE_DOCUMENT, 415, "Unsupported Media Type"),
        (
            PIDF,
            b"<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple>",
            400,
            "XML not well-formed",
        ),
        (PIDF, b"", 400, "Empty XML document"),
        (
            PIDF,
            b"<presence xmlns='urn:ietf:params:xml:ns:pidf'>"
            + tuple_("t").encode()
            + b"</presence>",
            400,
            "PIDF presence without entity",
        ),
        (
            PIDF,
            doc("<tuple id='t'><contact>sip:a@b</contact></tuple>"),
            400,
            "PIDF tuple without status",
        ),
        (PIDF, doc("<tuple><status/></tuple>"), 400, "PIDF tuple without id"),
        (
            PIDF,
            doc("<tuple id='t'><status/><status/></tuple>"),
            400,
            "PIDF tuple with more than one status",
        ),
        (PIDF, doc(tuple_("t") + tuple_("t")), 400, "PIDF tuple id not unique"),
        (PIDF, b"<presence entity='sip:a@b'/>", 400, "Not a PIDF document"),
        (
            PIDF,
            b"<watcherinfo xmlns='urn:ietf:params:xml:ns:watcherinfo'/>",
            400,
            "Not a PIDF document",
        ),
        (PIDF, doc(tuple_("t", basic="busy")), 400, "Invalid PIDF basic"),
        (
            PIDF,
            doc(tuple_("t", extra="<timestamp>yesterday</timestamp>")),
            400,
            "Invalid PIDF timestamp",
        ),
        (
            PIDF,
            doc(tuple_("t", extra="<contact priority='2'>sip:a@b</contact>")),
            400,
            "Invalid PIDF contact",
        ),
        (PIDF, doc("<unknown-pidf-element/>"), 400, "Invalid PIDF unknown-pidf-element"),
        (PIDF, doc("<nonamespace xmlns=''/>"), 400, "Invalid PIDF nonamespace"),
        (
            PIDF,
            b"<!DOCTYPE presence [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
            + doc("&x;").split(b"?>", 1)[1],
            400,
            "DTD not allowed in XML document",
        ),
    ],
)
def test_bad_publications_are_refused(content_type, body, status, reason):
    with pytest.raises(BadBody) as caught:
        presence.validate(body, content_type)
    assert caught.value.status == status
    assert caught.value.reason == reason
    assert "root:" not in caught.value.detail


def test_size_limit_is_a_parameter():
    with pytest.raises(BadBody) as caught:
        PresencePackage(max_bytes=100).validate(CORE_DOCUMENT, PIDF)
    assert caught.value.status == 400
    assert caught.value.reason == "XML document too large"
    PresencePackage(max_bytes=len(CORE_DOCUMENT)).validate(CORE_DOCUMENT, PIDF)


# -- aggregate ------------------------------------------------------------------------

OLDER_DESK = doc(
    tuple_("desk-phone", extra="<contact>sip:alice@desk.example.org</contact>")
    + tuple_("shared", basic="open", extra="<note>from the desk</note>")
    + "<note>older note</note>"
    + '<dm:person id="alice"><rpid:activities><rpid:meeting/></rpid:activities></dm:person>'
    + '<dm:device id="desk"><dm:deviceID>mac:8c:1a:bf:00:00:01</dm:deviceID></dm:device>',
    entity="pres:alice@example.org",
)
NEWER_MOBILE = doc(
    tuple_("mobile", extra="<contact>sip:alice@mobile.example.org</contact>")
    + tuple_("shared", basic="closed", extra="<note>from the mobile</note>")
    + '<dm:person id="alice"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>'
)


def test_aggregate_of_nothing_is_none():
    assert presence.aggregate("sip:alice@example.org", []) is None


def test_single_publication_is_returned_byte_for_byte():
    body = b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:x@y'>  </presence>"
    assert presence.aggregate("sip:alice@example.org", [publication(body, "e", 1)]) is body


def test_two_devices_compose_into_one_document():
    state = presence.aggregate(
        "sip:alice@example.org",
        [publication(NEWER_MOBILE, "new", 20.0), publication(OLDER_DESK, "old", 10.0)],
    )
    assert state.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<')
    presence.validate(state, PIDF)
    root = parsed(state)
    assert root.tag == f"{{{PIDF_NS}}}presence"
    assert root.get("entity") == "sip:alice@example.org"

    assert root.xpath("p:tuple/@id", namespaces=NS) == ["mobile", "shared", "desk-phone"]
    shared = root.xpath("p:tuple[@id='shared']", namespaces=NS)[0]
    assert shared.xpath("string(p:status/p:basic)", namespaces=NS) == "closed"
    assert shared.xpath("string(p:note)", namespaces=NS) == "from the mobile"

    people = root.xpath("dm:person", namespaces=NS)
    assert [p.get("id") for p in people] == ["alice"]
    assert people[0].xpath("rpid:activities/rpid:on-the-phone", namespaces=NS)
    assert root.xpath("dm:device/@id", namespaces=NS) == ["desk"]
    assert root.xpath("p:note/text()", namespaces=NS) == ["older note"]

    # RFC 3863 order: tuples, then notes, then extensions.
    local_names = [etree.QName(child).localname for child in root]
    assert local_names == ["tuple", "tuple", "tuple", "note", "person", "device"]


def test_notes_come_from_the_newest_publication_that_has_any():
    newest = doc(tuple_("a") + "<note xml:lang='en'>newest</note><note xml:lang='de'>neu</note>")
    older = doc(tuple_("b") + "<note>older</note>")
    state = presence.aggregate(
        "sip:alice@example.org", [publication(newest, "1", 2), publication(older, "2", 1)]
    )
    root = parsed(state)
    assert root.xpath("p:note/text()", namespaces=NS) == ["newest", "neu"]
    assert root.xpath("p:note/@xml:lang", namespaces=NS) == ["en", "de"]


def test_rich_presence_survives_composition():
    other = doc(tuple_("alice-laptop"), entity="sip:bob@example.net")
    state = presence.aggregate(
        "sip:bob@example.net", [publication(other, "1", 2), publication(RPID_DOCUMENT, "2", 1)]
    )
    presence.validate(state, PIDF)
    root = parsed(state)
    original = parsed(RPID_DOCUMENT)
    for path in ("dm:person", "dm:device", "p:tuple[@id='bob-softphone']"):
        (before,) = original.xpath(path, namespaces=NS)
        (after,) = root.xpath(path, namespaces=NS)
        assert etree.tostring(
            after, method="c14n", exclusive=True, with_comments=False
        ).strip() == (
            etree.tostring(before, method="c14n", exclusive=True, with_comments=False).strip()
        )


def test_prefixes_of_the_sources_stay_declared():
    # A source with PIDF under a prefix and a default namespace of its own.
    prefixed = (
        b"<p:presence xmlns:p='urn:ietf:params:xml:ns:pidf' xmlns:x='urn:example:x'"
        b" entity='sip:alice@example.org'><p:tuple id='p1'><p:status><p:basic>open</p:basic>"
        b"</p:status><x:kind value='x:thing'/></p:tuple></p:presence>"
    )
    state = presence.aggregate(
        "sip:alice@example.org", [publication(prefixed, "1", 2), publication(OLDER_DESK, "2", 1)]
    )
    presence.validate(state, PIDF)
    root = parsed(state)
    assert root.nsmap[None] == PIDF_NS
    assert root.nsmap["x"] == "urn:example:x"  # QName in an attribute value stays resolvable
    assert root.xpath("p:tuple/@id", namespaces=NS) == ["p1", "desk-phone", "shared"]


def test_unreadable_stored_publication_is_left_out():
    state = presence.aggregate(
        "sip:alice@example.org",
        [
            publication(b"<broken", "1", 3),
            publication(b"<other/>", "2", 2),
            publication(OLDER_DESK, "3", 1),
        ],
    )
    assert parsed(state).xpath("p:tuple/@id", namespaces=NS) == ["desk-phone", "shared"]


def test_identical_extensions_are_kept_once():
    ext = "<x:caps xmlns:x='urn:example:x'>same</x:caps>"
    state = presence.aggregate(
        "sip:alice@example.org",
        [publication(doc(tuple_("a") + ext), "1", 2), publication(doc(tuple_("b") + ext), "2", 1)],
    )
    assert len(parsed(state).xpath("x:caps", namespaces={"x": "urn:example:x"})) == 1


# -- neutral state ---------------------------------------------------------------------


def test_neutral_none_sends_no_body():
    assert PresencePackage().neutral_body("sip:alice@example.org") is None
    assert presence.neutral_body("sip:alice@example.org") is None


def test_neutral_closed_is_one_closed_tuple():
    package = PresencePackage(neutral="closed")
    body = package.neutral_body("sip:a&b@example.org")
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    package.validate(body, PIDF)
    root = parsed(body)
    assert root.get("entity") == "sip:a&b@example.org"
    assert root.xpath("p:tuple/p:status/p:basic/text()", namespaces=NS) == ["closed"]


def test_neutral_setting_is_checked():
    with pytest.raises(ValueError):
        PresencePackage(neutral="open")  # type: ignore[arg-type]


# -- contract and registry --------------------------------------------------------------


class Sla(EventPackage):
    name = "dialog;sla"
    content_types = ("application/dialog-info+xml",)


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(base, "_registry", dict(base._registry))


def test_presence_registers_on_import():
    # The server may re-register it with its neutral-body setting: same class either way.
    assert isinstance(base.get("presence"), type(presence))
    assert "presence" in base.names()
    assert presence.content_types[0] == PIDF
    assert presence.publishable


def test_registry_takes_full_names_and_replacements(registry):
    sla = base.register(Sla())
    assert base.get("dialog;sla") is sla
    assert base.get("dialog ; sla") is sla
    assert base.get("dialog") is not sla  # the plain package, registered by the server
    assert base.names() == sorted(base.names())

    closed = base.register(PresencePackage(neutral="closed"))
    assert base.get("presence") is closed


def test_registry_refuses_a_nameless_package(registry):
    with pytest.raises(ValueError):
        base.register(EventPackage())


def test_base_package_defaults():
    package = Sla()
    body = b"<dialog-info/>"
    newer = publication(body, "1", 2)
    assert package.aggregate("sip:a@b", [newer, publication(b"<old/>", "2", 1)]) is body
    assert package.aggregate("sip:a@b", []) is None
    assert package.neutral_body("sip:a@b") is None
    assert package.notify_body(body, None) is body
    assert package.notify_body(body, lambda state: state.upper()) == b"<DIALOG-INFO/>"
    assert package.notify_body(None, lambda state: b"x") is None
    with pytest.raises(BadBody) as caught:
        package.validate(body, PIDF)
    assert (caught.value.status, caught.value.reason) == (415, "Unsupported Media Type")
    package.validate(body, "application/dialog-info+xml")


def test_validate_from_many_threads():
    # Channels runs sync work on a thread pool; parser and schema are per thread.
    from concurrent.futures import ThreadPoolExecutor

    def check(i: int) -> str:
        body = CORE_DOCUMENT if i % 2 else doc(tuple_("t", basic="busy"))
        try:
            presence.validate(body, PIDF)
        except BadBody as exc:
            return exc.reason
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(check, range(400)))
    assert results == ["Invalid PIDF basic", "ok"] * 200
