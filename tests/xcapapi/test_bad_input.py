"""Hostile input gets the RFC's error and leaves every stored document as it was: broken
XML, entity bombs, external entities (never fetched), oversized bodies, bad selectors,
paths that try to leave the user's tree, the wrong user, stale ETags."""

import socket
import threading

import pytest

from tests.xcapapi.client import XcapClient
from tests.xcapapi.conftest import assert_conflict, start_xcap_server

LIMIT = 4096
RL = "resource-lists/users/sip:alice@localhost/index"
BOB_RL = "resource-lists/users/sip:bob@localhost/index"
RL_MIME = "application/resource-lists+xml"
EL = "application/xcap-el+xml"
DOCUMENT = b"""<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="friends">
    <entry uri="sip:bob@localhost"/>
  </list>
</resource-lists>"""
BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="&lol9;"/>
</resource-lists>"""


@pytest.fixture(scope="module")
def xcap_server(tmp_path_factory):
    proc = start_xcap_server(tmp_path_factory, XCAP_MAX_DOCUMENT_SIZE=str(LIMIT))
    yield proc
    proc.stop()


@pytest.fixture
def alice(xcap_server):
    alice = XcapClient(xcap_server.http_url, "alice@localhost")
    assert alice.put(RL, DOCUMENT, RL_MIME).status in (200, 201)
    return alice


@pytest.fixture
def stored(alice):
    """Asserts at the end of the test that alice's document did not change."""
    before = alice.get(RL)
    yield before
    after = alice.get(RL)
    assert (after.status, after.body, after.etag) == (200, before.body, before.etag)


@pytest.fixture
def listener():
    """A TCP port that records every connection: nothing may ever connect to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    connections = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            connections.append(conn.recv(1024))
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], connections
    stop.set()
    thread.join()
    server.close()


def test_not_well_formed(alice, stored):
    assert_conflict(alice.put(RL, DOCUMENT[:-5], RL_MIME), "not-well-formed")
    assert_conflict(alice.put(RL, b"\x00\x01garbage", RL_MIME), "not-well-formed")


def test_entity_expansion_bomb(alice, stored):
    reply = alice.put(RL, BOMB, RL_MIME)
    assert "DTD" in assert_conflict(reply, "constraint-failure").get("phrase")
    element = RL + "/~~/resource-lists/list/entry"
    fragment = b'<!DOCTYPE e [<!ENTITY a "aaaa">]><entry uri="&a;"/>'
    assert_conflict(alice.put(element, fragment, EL), "not-xml-frag")


def test_external_entities_and_dtds_are_never_fetched(alice, stored, listener):
    port, connections = listener
    external_entity = DOCUMENT.replace(
        b"<resource-lists",
        f'<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/x">]>\n<resource-lists'.encode(),
    ).replace(b'name="friends"', b'name="&x;"')
    external_dtd = DOCUMENT.replace(
        b"<resource-lists",
        f'<!DOCTYPE resource-lists SYSTEM "http://127.0.0.1:{port}/d.dtd">\n<resource-lists'.encode(),
    )
    for document in (external_entity, external_dtd):
        assert_conflict(alice.put(RL, document, RL_MIME), "constraint-failure")
    element = RL + '/~~/resource-lists/list[@name="friends"]/entry[@uri="sip:x@y"]'
    fragment = f'<!DOCTYPE entry SYSTEM "http://127.0.0.1:{port}/e.dtd"><entry uri="sip:x@y"/>'
    assert_conflict(alice.put(element, fragment.encode(), EL), "not-xml-frag")
    assert connections == []


def test_xinclude_is_stored_as_data_not_followed(client, listener):
    port, connections = listener
    path = "resource-lists/users/sip:alice@localhost/xinclude"
    document = DOCUMENT.replace(
        b"</list>",
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="http://127.0.0.1:{port}/"/></list>'.encode(),
    )
    alice = client("alice")
    assert alice.put(path, document, RL_MIME).status in (200, 201)
    assert alice.get(path).body == document
    assert connections == []


def test_a_body_over_the_size_limit_is_413(alice, stored):
    padding = b"<!--" + b"x" * LIMIT + b"-->"
    reply = alice.put(RL, DOCUMENT + padding, RL_MIME)
    assert reply.status == 413
    element = RL + '/~~/resource-lists/list[@name="friends"]/entry[@uri="sip:big@x"]'
    assert alice.put(element, b'<entry uri="sip:big@x"/>' + padding, EL).status == 413


def test_a_write_that_would_grow_past_the_limit_is_409(alice, stored):
    body = (
        b'<entry uri="sip:big@x"><display-name>'
        + b"y" * (LIMIT - len(DOCUMENT))
        + b"</display-name></entry>"
    )
    assert len(body) < LIMIT
    element = RL + '/~~/resource-lists/list[@name="friends"]/entry[@uri="sip:big@x"]'
    assert "exceed" in assert_conflict(alice.put(element, body, EL), "constraint-failure").get(
        "phrase"
    )


@pytest.mark.parametrize(
    "selector",
    [
        "resource-lists/list[",
        'resource-lists/list[@name="friends"',
        "resource-lists/list[@name=friends]",
        "resource-lists//list",
        "resource-lists/x:list",
        "resource-lists/list/@",
        "resource-lists/list()",
        "@name",
    ],
)
def test_invalid_node_selectors_are_400(alice, stored, selector):
    path = f"{RL}/~~/{selector}"
    assert alice.get(path).status == 400
    assert alice.put(path, b'<list name="x"/>', EL).status == 400
    assert alice.delete(path).status == 400


def test_a_bad_xmlns_query_is_400(alice, stored):
    assert alice.get(RL + "/~~/resource-lists?xmlns(broken").status == 400


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("resource-lists/users/sip:alice@localhost/../sip:bob@localhost/index", 404),
        ("resource-lists/users/sip:alice@localhost/%2e%2e/sip:bob@localhost/index", 404),
        ("resource-lists/users/sip:alice@localhost/sub/index", 404),
        ("resource-lists/users/sip:alice@localhost/index%2F..%2F..%2Fbob", 404),
        # An encoded slash stays inside its segment: no XUI or name holds one.
        ("resource-lists/users/sip:alice@localhost%2F..%2Fsip:bob@localhost/index", 404),
        ("resource-lists/users/sip:alice@localhost%2Fx/index", 404),
        ("resource-lists/users/sip:bob@localhost/index", 403),
        ("resource-lists/users/alice@localhost/index", 403),
        ("resource-lists/users/../global/index", 404),
    ],
)
def test_paths_cannot_leave_the_users_tree(client, alice, stored, xcap_server, path, status):
    bob = XcapClient(xcap_server.http_url, "bob@localhost")
    bob.put(BOB_RL, DOCUMENT, RL_MIME)
    bob_before = bob.get(BOB_RL)
    assert alice.get(path).status == status
    assert alice.put(path, DOCUMENT, RL_MIME).status == status
    assert alice.delete(path).status == status
    after = bob.get(BOB_RL)
    assert (after.body, after.etag) == (bob_before.body, bob_before.etag)


def test_the_wrong_user(xcap_server, alice, stored):
    bob = XcapClient(xcap_server.http_url, "bob@localhost")
    assert bob.put(RL, DOCUMENT.replace(b"friends", b"bob"), RL_MIME).status == 403
    assert bob.delete(RL + "/~~/resource-lists/list/entry").status == 403
    assert XcapClient(xcap_server.http_url).delete(RL).status == 401


def test_a_stale_etag(alice, stored):
    stale = alice.put(RL, DOCUMENT.replace(b"friends", b"x"), RL_MIME, if_match='"0123"')
    assert stale.status == 412
    assert alice.delete(RL + "/~~/resource-lists/list/entry", if_match="0123").status == 412


@pytest.fixture
def client(xcap_server):
    return lambda user: XcapClient(xcap_server.http_url, f"{user}@localhost")
