"""Dialog state over real sockets: the dialog package (RFC 4235) and shared lines (dialog;sla).

Alice's devices publish her dialogs and bob watches her: he gets one merged dialog-info
per change, versions counting up per subscription, and a dialog that ended stays ended.
line1 is a shared line whose members are alice and bob: each watches the line and sees
the other's dialogs, never its own; carol is no member.
"""

import threading

import pytest
from lxml import etree

from tests.conftest import USERS
from tests.presence import (
    NotifyCollector,
    assert_silent,
    cseq,
    next_notify,
    publications,
    publish,
    snapshot,
    subscribe,
    watch,
)
from tests.serverproc import provision

ALICE = "sip:alice@localhost"
LINE = "sip:line1@localhost"
DIALOG_TYPE = "application/dialog-info+xml"
DIALOG_NS = "urn:ietf:params:xml:ns:dialog-info"
SA_NS = "urn:ietf:params:xml:ns:sa-dialog-info"
NS = {"d": DIALOG_NS, "sa": SA_NS}
PROGRESS = ["trying", "proceeding", "early", "confirmed", "terminated"]


def dialog_info(entity: str, *dialogs: str, state: str = "full") -> str:
    """A dialog-info document; each dialog "id:state" or "id:state:appearance"."""
    parts = []
    for spec in dialogs:
        dialog_id, dialog_state, *appearance = spec.split(":")
        line = f"<sa:appearance>{appearance[0]}</sa:appearance>" if appearance else ""
        parts.append(
            f'<dialog id="{dialog_id}" direction="initiator">{line}'
            f"<state>{dialog_state}</state></dialog>"
        )
    return (
        f'<?xml version="1.0"?>\n<dialog-info xmlns="{DIALOG_NS}" xmlns:sa="{SA_NS}"'
        f' version="0" state="{state}" entity="{entity}">{"".join(parts)}</dialog-info>'
    )


def read(notify) -> tuple[int, dict[str, tuple[str, str | None]]]:
    """(version, {dialog id: (state, appearance)}) of a dialog-info NOTIFY."""
    assert notify.header("Content-Type") == DIALOG_TYPE, notify.text
    root = etree.fromstring(notify.body.encode())
    assert root.tag == f"{{{DIALOG_NS}}}dialog-info", notify.body
    assert root.get("state") == "full"
    found = {
        d.get("id"): (
            d.findtext("d:state", namespaces=NS),
            d.findtext("sa:appearance", namespaces=NS),
        )
        for d in root.iterfind("d:dialog", NS)
    }
    return int(root.get("version")), found


def states(notify) -> dict[str, str]:
    return {dialog_id: state for dialog_id, (state, _) in read(notify)[1].items()}


def publish_dialog(client, body: str, *, presentity: str | None = None, **kwargs):
    return publish(
        client, body, content_type=DIALOG_TYPE, event="dialog", presentity=presentity, **kwargs
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = provision(
        tmp_path_factory.mktemp("dialog"),
        [*USERS, ("line1@localhost", "secret")],
        PRESENCE_SLA_GROUPS="line1@localhost=alice@localhost,bob@localhost",
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def bob(server, ua):
    """Bob watching alice's dialogs over WebSocket, the immediate NOTIFY already read."""
    client = ua("ws", server, user="bob")
    response, first = watch(client, event="dialog")
    assert response.header("Expires"), response.text
    assert first.header("Event") == "dialog"
    assert read(first) == (0, {})  # an idle entity: a dialog-info without dialogs
    return client


# dialog (RFC 4235) -----------------------------------------------------------------------


def test_two_devices_are_merged_with_a_version_counting_up_per_watcher(server, ua, bob):
    desk = ua("udp", server, user="alice")
    mobile = ua("tcp", server, user="alice")

    desk_etag = publish_dialog(desk, dialog_info(ALICE, "desk-1:early")).header("SIP-ETag")
    first = next_notify(bob)
    assert read(first) == (1, {"desk-1": ("early", None)})
    assert publish_dialog(mobile, dialog_info(ALICE, "mobile-1:confirmed")).status == 200
    second = next_notify(bob)
    assert read(second) == (2, {"desk-1": ("early", None), "mobile-1": ("confirmed", None)})
    reply = publish_dialog(desk, dialog_info(ALICE, "desk-1:confirmed"), etag=desk_etag)
    assert reply.status == 200, reply.text
    third = next_notify(bob)
    assert states(third) == {"desk-1": "confirmed", "mobile-1": "confirmed"}
    assert read(third)[0] == 3
    assert cseq(first) < cseq(second) < cseq(third)
    # Another watcher has a counter of its own, starting at 0 with the same state.
    carol = ua("udp", server, user="carol")
    _, carols = watch(carol, ALICE, event="dialog")
    assert read(carols)[0] == 0
    assert states(carols) == states(third)
    assert len(publications(server)) == 2


def test_a_late_early_never_revives_a_terminated_dialog(server, ua, bob):
    phone = ua("udp", server, user="alice")
    proxy = ua("udp", server, user="alice")  # a second source of the same dialog
    etag = publish_dialog(phone, dialog_info(ALICE, "call:confirmed")).header("SIP-ETag")
    next_notify(bob)
    etag = publish_dialog(phone, dialog_info(ALICE, "call:terminated"), etag=etag).header(
        "SIP-ETag"
    )
    assert states(next_notify(bob)) == {"call": "terminated"}

    # Another publisher's stale report of the same dialog arrives after the end.
    assert publish_dialog(proxy, dialog_info(ALICE, "call:early")).status == 200
    assert states(next_notify(bob)) == {"call": "terminated"}
    # So does the phone's own, as a modify: the stored publication keeps the end.
    reply = publish_dialog(phone, dialog_info(ALICE, "call:early", "next:trying"), etag=etag)
    assert reply.status == 200, reply.text
    assert states(next_notify(bob)) == {"call": "terminated", "next": "trying"}
    stored = {bytes(row["body"]) for row in publications(server)}
    assert any(b"<state>terminated</state>" in body for body in stored)


def test_two_publishers_racing_are_seen_in_order(server, ua, bob):
    """Two devices step their dialogs (and one dialog they both report) through the state
    machine at the same time: the watcher gets every change, versions 1, 2, 3, ... in the
    order they arrive, and no dialog it sees ever moves backwards."""
    devices = {name: ua("udp", server, user="alice") for name in ("a", "b")}
    collector = NotifyCollector(bob)
    failures = []

    def run(name):
        etag = None
        for state in PROGRESS:
            body = dialog_info(ALICE, f"own-{name}:{state}", f"shared:{state}")
            reply = publish_dialog(devices[name], body, etag=etag)
            if reply.status != 200:
                failures.append(reply.text)
                return
            etag = reply.header("SIP-ETag")

    try:
        threads = [threading.Thread(target=run, args=(name,)) for name in devices]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        got = collector.wait(2 * len(PROGRESS))
    finally:
        collector.stop()

    assert not failures, failures
    assert len(got) == 2 * len(PROGRESS)
    assert [read(n)[0] for n in got] == list(range(1, 2 * len(PROGRESS) + 1))
    numbers = [cseq(n) for n in got]
    assert numbers == sorted(set(numbers)), numbers
    seen: dict[str, int] = {}
    for notify in got:
        for dialog_id, state in states(notify).items():
            assert PROGRESS.index(state) >= seen.get(dialog_id, 0), (dialog_id, state)
            seen[dialog_id] = PROGRESS.index(state)
    assert states(got[-1]) == {"own-a": "terminated", "own-b": "terminated", "shared": "terminated"}


BAD_BODIES = [
    ("<dialog-info", "XML not well-formed"),
    (dialog_info(ALICE, "call:ringing"), "Invalid dialog-info state"),
    (dialog_info(ALICE, "call:early", "call:confirmed"), "dialog id not unique"),
    (dialog_info(ALICE, "call:early").replace(' id="call"', ""), "dialog without id"),
    (dialog_info(ALICE, "call:early").replace('version="0" ', ""), "Invalid dialog-info version"),
    (
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{ALICE}"/>',
        "Not a dialog-info document",
    ),
]


@pytest.mark.parametrize(("body", "reason"), BAD_BODIES)
def test_a_bad_dialog_info_gets_400_and_changes_nothing(server, ua, bob, body, reason):
    alice = ua("udp", server, user="alice")
    etag = publish_dialog(alice, dialog_info(ALICE, "kept:confirmed")).header("SIP-ETag")
    next_notify(bob)
    before = snapshot(server)

    for extra in ({}, {"etag": etag}):  # an initial PUBLISH, then a modify
        reply = publish_dialog(alice, body, **extra)
        assert reply.start == f"SIP/2.0 400 Bad Request ({reason})", reply.text
        assert reply.header("SIP-ETag") is None
        assert snapshot(server) == before
    assert_silent(bob, 0.2)


def test_a_type_the_dialog_package_does_not_take_gets_415(server, ua, bob):
    alice = ua("udp", server, user="alice")
    before = snapshot(server)

    reply = publish(alice, dialog_info(ALICE, "x:early"), event="dialog")  # as PIDF

    assert reply.status == 415, reply.text
    assert reply.header("Accept") == DIALOG_TYPE
    assert snapshot(server) == before
    assert_silent(bob, 0.2)


def test_plain_dialog_state_is_published_only_by_its_owner(server, ua, bob):
    carol = ua("udp", server, user="carol")
    before = snapshot(server)

    reply = publish_dialog(carol, dialog_info(ALICE, "x:early"), presentity=ALICE)

    assert reply.status == 403, reply.text
    assert snapshot(server) == before


# dialog;sla (shared line appearances) ----------------------------------------------------


@pytest.fixture
def members(server, ua):
    """Alice and bob watching line1, each with the immediate NOTIFY read."""
    watchers = {}
    for user, transport in (("alice", "udp"), ("bob", "ws")):
        client = ua(transport, server, user=user)
        response, first = watch(client, LINE, event="dialog;sla")
        assert response.status == 200, response.text
        assert first.header("Event") == "dialog;sla"
        assert read(first) == (0, {})
        watchers[user] = client
    return watchers


def publish_line(client, *dialogs: str, **kwargs):
    return publish(
        client,
        dialog_info(LINE, *dialogs),
        content_type=DIALOG_TYPE,
        event="dialog;sla",
        presentity=LINE,
        **kwargs,
    )


def test_a_member_is_not_echoed_its_own_line_state(server, ua, members):
    alice_phone = ua("tcp", server, user="alice")
    bob_phone = ua("udp", server, user="bob")

    reply = publish_line(alice_phone, "a1:confirmed:1")
    assert reply.status == 200, reply.text
    assert read(next_notify(members["bob"])) == (1, {"a1": ("confirmed", "1")})
    assert read(next_notify(members["alice"])) == (1, {})  # not her own dialog back

    assert publish_line(bob_phone, "b1:early:2").status == 200
    assert read(next_notify(members["alice"])) == (2, {"b1": ("early", "2")})
    assert read(next_notify(members["bob"])) == (2, {"a1": ("confirmed", "1")})
    rows = publications(server, LINE)
    assert {(row["event"], row["publisher"]) for row in rows} == {
        ("dialog;sla", ALICE),
        ("dialog;sla", "sip:bob@localhost"),
    }


def test_a_line_appearance_outlives_the_copy_that_dropped_it(server, ua, members):
    alice_phone = ua("udp", server, user="alice")
    etag = publish_line(alice_phone, "call:early:3").header("SIP-ETag")
    assert read(next_notify(members["bob"]))[1] == {"call": ("early", "3")}
    next_notify(members["alice"])

    publish_line(alice_phone, "call:terminated", etag=etag)  # the phone left it out

    assert read(next_notify(members["bob"]))[1] == {"call": ("terminated", "3")}


def test_a_non_member_may_neither_watch_nor_publish_the_line(server, ua, members):
    carol = ua("udp", server, user="carol")
    before = snapshot(server)

    assert subscribe(carol, LINE, event="dialog;sla").status == 403
    assert publish_line(carol, "c1:confirmed:1").status == 403
    # Membership is for dialog;sla only: the line's plain dialog state is its own.
    alice = ua("udp", server, user="alice")
    assert publish_dialog(alice, dialog_info(LINE, "x:early"), presentity=LINE).status == 403

    assert snapshot(server) == before
    assert_silent(members["alice"], 0.2)
    assert_silent(members["bob"], 0.1)


def test_allow_events_names_event_types_only(server, ua):
    carol = ua("udp", server, user="carol")

    reply = subscribe(carol, ALICE, event="no-such-package")

    assert reply.status == 489
    allowed = [token.strip() for token in reply.header("Allow-Events").split(",")]
    assert "dialog" in allowed and "presence" in allowed
    assert all(";" not in token for token in allowed)


# Settings: one dialog per NOTIFY, a dummy when idle ----------------------------------------


@pytest.fixture(scope="module")
def phones_server(tmp_path_factory):
    proc = provision(
        tmp_path_factory.mktemp("dialog-phones"),
        USERS,
        PRESENCE_DIALOG_FORCE_SINGLE="1",
        PRESENCE_DIALOG_FORCE_DUMMY="1",
    )
    proc.start()
    yield proc
    proc.stop()


def test_force_single_and_force_dummy(phones_server, ua):
    watcher = ua("udp", phones_server, user="bob")
    _, first = watch(watcher, event="dialog")
    assert read(first) == (0, {"idle": ("terminated", None)})
    alice = ua("udp", phones_server, user="alice")

    publish_dialog(alice, dialog_info(ALICE, "held:confirmed", "ringing:early", "old:terminated"))

    assert read(next_notify(watcher)) == (1, {"held": ("confirmed", None)})
