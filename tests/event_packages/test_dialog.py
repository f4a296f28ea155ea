"""The dialog package (RFC 4235) and shared line appearances (dialog;sla)."""

import pytest
from lxml import etree

from sipws.event_packages import base
from sipws.event_packages.base import BadBody, Publication
from sipws.event_packages.dialog import (
    DIALOG_NS,
    SA_NS,
    DialogPackage,
    SharedLineDialogPackage,
    parse_groups,
)

TYPE = "application/dialog-info+xml"
NS = {"d": DIALOG_NS, "sa": SA_NS}
ALICE = "sip:alice@localhost"

# RFC 4235 section 4's examples, in their shape: an early dialog, and a confirmed one
# with every participant element.
EARLY_EXAMPLE = b"""\
<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
             version="0" state="full" entity="sip:alice@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710"
          local-tag="1928301774" direction="initiator">
    <state>early</state>
  </dialog>
</dialog-info>
"""
CONFIRMED_EXAMPLE = b"""\
<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
             version="1" state="full" entity="sip:alice@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710"
          local-tag="1928301774" remote-tag="hh76a" direction="initiator">
    <state>confirmed</state>
    <duration>274</duration>
    <replaces call-id="hg7fd" local-tag="3" remote-tag="4"/>
    <referred-by display="Carol">sip:carol@example.com</referred-by>
    <route-set><hop>sip:proxy.example.com;lr</hop></route-set>
    <local>
      <identity display="Alice">sip:alice@example.com</identity>
      <target uri="sip:alice@pc33.example.com">
        <param pname="+sip.rendering" pval="yes"/>
      </target>
      <session-description type="application/sdp">v=0</session-description>
      <cseq>2</cseq>
    </local>
    <remote>
      <identity display="Bob">sip:bob@example.org</identity>
      <target uri="sip:bobster@phone21.example.org"/>
    </remote>
  </dialog>
</dialog-info>
"""
ENDED_EXAMPLE = b"""\
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
             version="2" state="partial" entity="sip:alice@example.com">
  <dialog id="as7d900as8"><state event="remote-bye" code="486">terminated</state></dialog>
</dialog-info>
"""
IDLE_EXAMPLE = (
    b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full"'
    b' entity="sip:alice@example.com"/>'
)
# A shared-appearance phone: the appearance comes before <state>, an extension at the end.
SLA_EXAMPLE = b"""\
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
             xmlns:sa="urn:ietf:params:xml:ns:sa-dialog-info"
             version="3" state="full" entity="sip:line1@localhost">
  <dialog id="d1" direction="recipient">
    <sa:appearance>2</sa:appearance>
    <sa:exclusive>false</sa:exclusive>
    <state>confirmed</state>
  </dialog>
  <sa:note-to-self>kept</sa:note-to-self>
</dialog-info>
"""


def info(*dialogs: str, entity: str = ALICE, state: str = "full", sa: bool = False) -> bytes:
    """A dialog-info document; each dialog as "id:state" or "id:state:appearance"."""
    parts = []
    for spec in dialogs:
        dialog_id, dialog_state, *appearance = spec.split(":")
        extra = f"<sa:appearance>{appearance[0]}</sa:appearance>" if appearance else ""
        parts.append(f'<dialog id="{dialog_id}">{extra}<state>{dialog_state}</state></dialog>')
    sa_ns = f' xmlns:sa="{SA_NS}"' if sa else ""
    return (
        f'<dialog-info xmlns="{DIALOG_NS}"{sa_ns} version="5" state="{state}"'
        f' entity="{entity}">{"".join(parts)}</dialog-info>'
    ).encode()


def pub(body: bytes, received: float, etag: str = "") -> Publication:
    return Publication(body, TYPE, etag or f"e{received}", received)


def newest_first(*bodies: bytes) -> list[Publication]:
    """Publications of `bodies`, the first the newest."""
    return [pub(body, float(len(bodies) - index)) for index, body in enumerate(bodies)]


def parse(body: bytes) -> etree._Element:
    return etree.fromstring(body)


def dialogs(body: bytes) -> list[tuple[str, str]]:
    """(id, state) of each dialog, in document order."""
    root = parse(body)
    return [
        (d.get("id"), d.findtext("d:state", namespaces=NS).strip())
        for d in root.iterfind("d:dialog", NS)
    ]


def appearances(body: bytes) -> dict[str, str | None]:
    root = parse(body)
    return {
        d.get("id"): d.findtext("sa:appearance", namespaces=NS)
        for d in root.iterfind("d:dialog", NS)
    }


@pytest.fixture
def dialog():
    return DialogPackage()


# Validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [EARLY_EXAMPLE, CONFIRMED_EXAMPLE, ENDED_EXAMPLE, IDLE_EXAMPLE, SLA_EXAMPLE]
)
def test_rfc_4235_documents_are_accepted(dialog, body):
    dialog.validate(body, TYPE)
    dialog.validate(body, "Application/Dialog-Info+XML; charset=UTF-8")


@pytest.mark.parametrize("state", ["trying", "proceeding", "early", "confirmed", "terminated"])
def test_every_dialog_state_is_accepted(dialog, state):
    dialog.validate(info(f"d1:{state}"), TYPE)
    dialog.validate(info(f"d1: {state}\n"), TYPE)  # a token: surrounding blanks are fine


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<dialog-info", "XML not well-formed"),
        (b"", "Empty XML document"),
        (
            b'<!DOCTYPE x [<!ENTITY a "b">]><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"'
            b' version="0" state="full" entity="sip:a@b"/>',
            "DTD not allowed in XML document",
        ),
        (
            b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>',
            "Not a dialog-info document",
        ),
        (
            b'<dialog-info xmlns="urn:example:other" version="0" state="full" entity="sip:a@b"/>',
            "Not a dialog-info document",
        ),
        (info("d1:early", entity=""), "dialog-info without entity"),
        (info("d1:early").replace(b'version="5" ', b""), "Invalid dialog-info version"),
        (info("d1:early").replace(b'version="5"', b'version="-1"'), "Invalid dialog-info version"),
        (info("d1:early", state="complete"), "Invalid dialog-info state"),
        (info("d1:ringing"), "Invalid dialog-info state"),
        (info("d1:early").replace(b' id="d1"', b""), "dialog without id"),
        (info("d1:early", "d1:confirmed"), "dialog id not unique"),
        (info("d1:early").replace(b"<state>early</state>", b""), "dialog without state"),
        (
            info("d1:early").replace(b"</dialog>", b"<state>confirmed</state></dialog>"),
            "dialog with more than one state",
        ),
        (
            info("d1:early").replace(b'id="d1"', b'id="d1" direction="up"'),
            "Invalid dialog-info dialog direction",
        ),
        (
            info("d1:terminated").replace(b"<state>", b'<state code="99">'),
            "Invalid dialog-info state code",
        ),
        (
            info("d1:terminated").replace(b"<state>", b'<state event="hangup">'),
            "Invalid dialog-info state event",
        ),
        (
            info("d1:early").replace(b"</dialog>", b"<duration>long</duration></dialog>"),
            "Invalid dialog-info duration",
        ),
        (
            info("d1:early").replace(b"</dialog>", b"<colour>red</colour></dialog>"),
            "Invalid dialog-info colour",
        ),
    ],
)
def test_broken_documents_are_refused_with_400(dialog, body, reason):
    with pytest.raises(BadBody) as refused:
        dialog.validate(body, TYPE)
    assert refused.value.status == 400
    assert refused.value.reason == reason


def test_another_media_type_is_refused_with_415(dialog):
    with pytest.raises(BadBody) as refused:
        dialog.validate(EARLY_EXAMPLE, "application/pidf+xml")
    assert refused.value.status == 415


def test_an_oversized_document_is_refused():
    small = DialogPackage(max_bytes=100)
    with pytest.raises(BadBody) as refused:
        small.validate(CONFIRMED_EXAMPLE, TYPE)
    assert (refused.value.status, refused.value.reason) == (400, "XML document too large")


# Aggregation -------------------------------------------------------------------------


def test_a_single_publication_becomes_a_full_document_of_the_presentity(dialog):
    out = dialog.aggregate(ALICE, newest_first(ENDED_EXAMPLE))

    root = parse(out)
    assert root.tag == f"{{{DIALOG_NS}}}dialog-info"
    assert (root.get("entity"), root.get("state"), root.get("version")) == (ALICE, "full", "0")
    assert dialogs(out) == [("as7d900as8", "terminated")]
    state = root.find("d:dialog/d:state", NS)
    assert (state.get("event"), state.get("code")) == ("remote-bye", "486")


def test_two_publishers_dialogs_are_merged_newest_first(dialog):
    desk = info("desk-1:confirmed", "desk-2:terminated")
    mobile = info("mobile-1:early")

    out = dialog.aggregate(ALICE, newest_first(mobile, desk))

    assert dialogs(out) == [
        ("mobile-1", "early"),
        ("desk-1", "confirmed"),
        ("desk-2", "terminated"),
    ]


def test_the_rich_example_survives_the_merge_intact(dialog):
    out = dialog.aggregate(ALICE, newest_first(info("other:trying"), CONFIRMED_EXAMPLE))

    merged = parse(out).find("d:dialog[@id='as7d900as8']", NS)
    original = parse(CONFIRMED_EXAMPLE).find("d:dialog", NS)
    assert etree.tostring(merged, method="c14n") == etree.tostring(original, method="c14n")


def test_a_terminated_dialog_is_never_revived_by_a_later_early(dialog):
    ended = info("call:terminated")
    late = info("call:early")

    out = dialog.aggregate(ALICE, newest_first(late, ended))

    assert dialogs(out) == [("call", "terminated")]


@pytest.mark.parametrize(
    ("older", "newer", "shown"),
    [
        ("trying", "proceeding", "proceeding"),
        ("proceeding", "trying", "proceeding"),
        ("early", "proceeding", "early"),
        ("confirmed", "early", "confirmed"),
        ("early", "confirmed", "confirmed"),
        ("confirmed", "terminated", "terminated"),
        ("terminated", "confirmed", "terminated"),
        ("terminated", "trying", "terminated"),
    ],
)
def test_the_dialog_furthest_along_the_state_machine_wins(dialog, older, newer, shown):
    out = dialog.aggregate(ALICE, newest_first(info(f"call:{newer}"), info(f"call:{older}")))

    assert dialogs(out) == [("call", shown)]


def test_among_equal_states_the_newest_copy_wins(dialog):
    older = info("call:confirmed").replace(b"</dialog>", b"<duration>10</duration></dialog>")
    newer = info("call:confirmed").replace(b"</dialog>", b"<duration>70</duration></dialog>")

    out = dialog.aggregate(ALICE, newest_first(newer, older))

    assert parse(out).findtext("d:dialog/d:duration", namespaces=NS) == "70"


def test_top_level_extensions_are_kept_once(dialog):
    extended = SLA_EXAMPLE

    out = dialog.aggregate(ALICE, newest_first(extended, extended))

    assert len(parse(out).findall("sa:note-to-self", NS)) == 1


def test_a_stored_body_that_does_not_parse_is_skipped(dialog, caplog):
    out = dialog.aggregate(ALICE, newest_first(b"<broken", info("d1:early")))

    assert dialogs(out) == [("d1", "early")]
    assert "skipping stored publication" in caplog.text


# Nothing published, one dialog, dummy -------------------------------------------------


def test_an_idle_entity_is_a_dialog_info_without_dialogs(dialog):
    out = dialog.neutral_body(ALICE)

    root = parse(out)
    assert root.tag == f"{{{DIALOG_NS}}}dialog-info"
    assert (root.get("entity"), root.get("state")) == (ALICE, "full")
    assert dialogs(out) == []
    dialog.validate(out, TYPE)


def test_force_dummy_puts_a_terminated_dialog_where_there_is_none():
    dummy = DialogPackage(force_dummy=True)

    for out in (dummy.neutral_body(ALICE), dummy.aggregate(ALICE, newest_first(IDLE_EXAMPLE))):
        assert dialogs(out) == [("idle", "terminated")]
        dummy.validate(out, TYPE)
    assert dialogs(dummy.aggregate(ALICE, newest_first(info("d1:early")))) == [("d1", "early")]


@pytest.mark.parametrize(
    ("published", "kept"),
    [
        (["a:terminated", "b:trying", "c:proceeding", "d:early", "e:confirmed"], "e"),
        (["a:terminated", "b:trying", "c:proceeding", "d:early"], "d"),
        (["a:terminated", "b:trying", "c:proceeding"], "c"),
        (["a:terminated", "b:trying"], "b"),
        (["a:terminated"], "a"),
    ],
)
def test_force_single_keeps_the_most_interesting_dialog(published, kept):
    single = DialogPackage(force_single=True)

    out = single.aggregate(ALICE, newest_first(info(*published)))

    assert [dialog_id for dialog_id, _ in dialogs(out)] == [kept]


def test_force_single_prefers_the_newest_among_equals():
    single = DialogPackage(force_single=True)

    out = single.aggregate(
        ALICE, newest_first(info("new:early"), info("mid:early", "old:terminated"))
    )

    assert dialogs(out) == [("new", "early")]


# Version per watcher ------------------------------------------------------------------


def test_with_version_rewrites_only_the_root_version(dialog):
    body = dialog.aggregate(ALICE, newest_first(CONFIRMED_EXAMPLE))

    for version in (0, 1, 42, 10**9):
        stamped = dialog.with_version(body, version)
        assert parse(stamped).get("version") == str(version)
        assert stamped.replace(f'version="{version}"'.encode(), b'version="0"', 1) == body


def test_with_version_of_a_document_not_made_here(dialog):
    foreign = (
        b'<d:dialog-info xmlns:d="urn:ietf:params:xml:ns:dialog-info" state="full"'
        b' entity="sip:a@b" version="9"/>'
    )

    assert parse(dialog.with_version(foreign, 3)).get("version") == "3"


def test_neutral_and_dummy_bodies_take_a_version():
    for package in (DialogPackage(), DialogPackage(force_dummy=True)):
        stamped = package.with_version(package.neutral_body(ALICE), 5)
        assert parse(stamped).get("version") == "5"


# One publication replacing its previous body -------------------------------------------


def test_successor_keeps_a_terminated_dialog_terminated(dialog):
    previous = info("call:terminated", "other:confirmed")
    late = info("call:early", "other:terminated", "new:trying")

    stored = dialog.successor(previous, late)

    assert dialogs(stored) == [("call", "terminated"), ("other", "terminated"), ("new", "trying")]


def test_successor_of_an_ordinary_update_is_the_body_itself(dialog):
    body = info("call:confirmed")

    assert dialog.successor(info("call:early"), body) is body


def test_a_partial_body_updates_only_the_dialogs_it_names(dialog):
    previous = info("a:confirmed", "b:early")
    partial = info("b:confirmed", "c:trying", state="partial")

    stored = dialog.successor(previous, partial)

    assert parse(stored).get("state") == "full"
    assert dialogs(stored) == [("a", "confirmed"), ("b", "confirmed"), ("c", "trying")]


# dialog;sla ----------------------------------------------------------------------------


@pytest.fixture
def sla():
    return SharedLineDialogPackage(
        groups={"sip:line1@localhost": ["sip:alice@localhost", "bob@LOCALHOST"]}
    )


def test_sla_is_versioned_and_leaves_out_the_watchers_own(sla):
    assert sla.name == "dialog;sla"
    assert sla.versioned and sla.excludes_own
    assert sla.content_types == (TYPE,)


def test_sla_keeps_the_appearance_of_each_dialog(sla):
    alice = info("a1:confirmed:1", sa=True, entity="sip:line1@localhost")
    bob = info("b1:early:2", sa=True, entity="sip:line1@localhost")
    sla.validate(alice, TYPE)

    out = sla.aggregate("sip:line1@localhost", newest_first(bob, alice, SLA_EXAMPLE))

    assert dialogs(out) == [("b1", "early"), ("a1", "confirmed"), ("d1", "confirmed")]
    assert appearances(out) == {"b1": "2", "a1": "1", "d1": "2"}
    assert parse(out).nsmap.get("sa") == SA_NS
    assert parse(out).findtext("d:dialog[@id='d1']/sa:exclusive", namespaces=NS) == "false"


def test_sla_appearance_stays_with_a_dialog_whose_winning_copy_lost_it(sla):
    ringing = info("call:early:3", sa=True)
    ended = info("call:terminated")

    out = sla.aggregate("sip:line1@localhost", newest_first(ringing, ended))

    assert dialogs(out) == [("call", "terminated")]
    assert appearances(out) == {"call": "3"}


def test_sla_appearance_stays_with_a_dialog_its_publisher_updates(sla):
    stored = sla.successor(info("call:early:3", "other:confirmed", sa=True), info("call:confirmed"))

    assert appearances(stored) == {"call": "3"}
    sla.validate(stored, TYPE)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (info("d1:early:two", sa=True), "Invalid dialog-info appearance"),
        (info("d1:early:-1", sa=True), "Invalid dialog-info appearance"),
        (
            info("d1:early:1", sa=True).replace(
                b"<state>", b"<sa:appearance>2</sa:appearance><state>"
            ),
            "dialog with more than one appearance",
        ),
    ],
)
def test_sla_refuses_a_bad_appearance(sla, dialog, body, reason):
    with pytest.raises(BadBody) as refused:
        sla.validate(body, TYPE)
    assert (refused.value.status, refused.value.reason) == (400, reason)
    dialog.validate(body, TYPE)  # plain dialog passes other namespaces through


def test_sla_members_are_the_line_and_its_group(sla):
    line = "sip:line1@localhost"
    assert sla.is_member("sip:alice@localhost", line)
    assert sla.is_member("sip:bob@localhost", line)
    assert sla.is_member(line, line)
    assert not sla.is_member("sip:carol@localhost", line)
    assert not sla.is_member("sip:alice@localhost", "sip:line2@localhost")
    assert not SharedLineDialogPackage().is_member("sip:alice@localhost", line)


def test_sla_groups_setting():
    groups = parse_groups(
        " line1@localhost = alice@localhost, sip:bob@Example.COM ;line2@localhost=carol@localhost;"
    )

    assert groups == {
        "sip:line1@localhost": frozenset({"sip:alice@localhost", "sip:bob@example.com"}),
        "sip:line2@localhost": frozenset({"sip:carol@localhost"}),
    }
    assert parse_groups("") == {}
    for bad in ("line1@localhost", "line1@localhost=", "=alice@localhost"):
        with pytest.raises(ValueError):
            parse_groups(bad)


# The registry -------------------------------------------------------------------------


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setattr(base, "_registry", {})
    dialog = base.register(DialogPackage())
    sla = base.register(SharedLineDialogPackage())
    return dialog, sla


def test_an_sla_event_parameter_finds_the_shared_line_package(registry):
    dialog, sla = registry

    assert base.for_event("dialog") is dialog
    assert base.for_event("dialog", [("sla", None)]) is sla
    assert base.for_event("dialog", [("id", "7"), ("SLA", None)]) is sla
    assert base.for_event("dialog", [("id", "sla")]) is dialog
    assert base.for_event("dialog", [("unknown", None)]) is dialog
    assert base.for_event("nothing", [("sla", None)]) is None


def test_allow_events_lists_event_types_without_parameters(registry):
    assert base.names() == ["dialog"]
