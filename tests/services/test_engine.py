"""The presence engine's database actions with injected time: no sleeping through expiries."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sipws.core.flow import Flow
from sipws.core.message import parse_message
from sipws.event_packages import base as packages
from sipws.event_packages.presence import PresencePackage
from sipws.models import ActiveWatcher, Presentity
from sipws.services.accounts import create_account
from sipws.services.dispatch import ServerConfig, SipServer
from sipws.services.expiry import expire_now
from sipws.services.publish import do_publish
from sipws.services.subscribe import do_subscribe
from tests.sipclient import digest_response

pytestmark = pytest.mark.django_db
PIDF = (
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@localhost">'
    '<tuple id="{id}"><status><basic>open</basic></status><note>{note}</note></tuple></presence>'
)
UDP_WATCHER = Flow("udp", "127.0.0.1", 40000)


async def _unused_send(flow, data):  # the actions under test only build messages
    return True


@pytest.fixture
def server(settings):
    settings.SIP = {**settings.SIP, "DOMAINS": ["localhost"], "DEFAULT_POLICY": "allow"}
    create_account("alice@localhost", "secret", create_login=False)
    create_account("bob@localhost", "secret", create_login=False)
    packages.register(PresencePackage(neutral="none"))
    return SipServer(ServerConfig(domains=["localhost"], secret=b"k" * 32), _unused_send)


def _request(
    server,
    method,
    user,
    *,
    target="alice",
    headers=(),
    body="",
    cseq=1,
    call_id="c1",
    to_tag=None,
    contact_port=40000,
):
    uri = f"sip:{target}@localhost"
    nonce = server.nonces.make(time.time())
    auth = digest_response(method, uri, user, "localhost", "secret", nonce, nc=cseq)
    to = f"<{uri}>" + (f";tag={to_tag}" if to_tag else "")
    text = "\r\n".join(
        [
            f"{method} {uri} SIP/2.0",
            "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK" + f"{time.time_ns()}",
            f"From: <sip:{user}@localhost>;tag=ft-{user}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{user}@127.0.0.1:{contact_port}>",
            f"Authorization: {auth}",
            *headers,
            f"Content-Length: {len(body)}",
            "",
            body,
        ]
    )
    return parse_message(text.encode())


def _publish(
    server, note, *, expires=60, etag=None, tuple_id="t1", call_id="p1", cseq=1, contact_port=40000
):
    headers = ["Event: presence", f"Expires: {expires}"]
    body = ""
    if note is not None:
        headers.append("Content-Type: application/pidf+xml")
        body = PIDF.format(id=tuple_id, note=note)
    if etag:
        headers.append(f"SIP-If-Match: {etag}")
    request = _request(
        server,
        "PUBLISH",
        "alice",
        headers=headers,
        body=body,
        call_id=call_id,
        cseq=cseq,
        contact_port=contact_port,
    )
    package = packages.get("presence")
    return do_publish(server, request, package, expires, "sip:alice@localhost", etag)


def _subscribe(server, expires=600):
    request = _request(server, "SUBSCRIBE", "bob", headers=["Event: presence"], call_id="s1")
    package = packages.get("presence")
    return do_subscribe(server, request, UDP_WATCHER, package, expires, "sip:alice@localhost")


def _notify(outgoing):
    return parse_message(outgoing.data)


def test_subscription_expiry_sends_final_notify_and_deletes_the_dialog(server):
    response, outgoing = _subscribe(server, expires=600)
    assert response.status == 200 and len(outgoing) == 1
    assert _notify(outgoing[0]).headers.get("Subscription-State") == "active;expires=600"

    later = datetime.now(UTC) + timedelta(seconds=300)
    assert expire_now(server, later) == []  # nothing is due yet
    final = expire_now(server, datetime.now(UTC) + timedelta(seconds=601))
    assert len(final) == 1
    notify = _notify(final[0])
    assert notify.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert notify.cseq.number == 2
    assert not ActiveWatcher.objects.exists()


def test_publication_expiry_notifies_watchers_with_the_remaining_state(server):
    _subscribe(server, expires=3600)
    _publish(server, "desk", expires=60, tuple_id="desk", call_id="p-desk")
    _, outgoing = _publish(
        server, "mobile", expires=600, tuple_id="mobile", call_id="p-mob", contact_port=40002
    )
    both = _notify(outgoing[0]).body
    assert b'id="mobile"' in both and b'id="desk"' in both

    changed = expire_now(server, datetime.now(UTC) + timedelta(seconds=61))
    assert len(changed) == 1
    body = _notify(changed[0]).body
    assert b'id="mobile"' in body and b'id="desk"' not in body
    assert list(Presentity.objects.values_list("sender", flat=True)) == [
        "sip:alice@127.0.0.1:40002"
    ]

    gone = expire_now(server, datetime.now(UTC) + timedelta(seconds=601))
    assert len(gone) == 1 and _notify(gone[0]).body == b""  # neutral state: no body
    assert not Presentity.objects.exists()


def test_local_cseq_strictly_increases_across_changes(server):
    _, [first] = _subscribe(server)
    assert _notify(first).cseq.number == 1
    assert ActiveWatcher.objects.get().local_cseq == 1  # stored with the new row
    etag = None
    seen = []
    for n in range(5):
        response, outgoing = _publish(server, f"n{n}", etag=etag, cseq=n + 1)
        etag = response.headers.get("SIP-ETag")
        seen.append(_notify(outgoing[0]).cseq.number)
    assert seen == [2, 3, 4, 5, 6]
    assert ActiveWatcher.objects.get().local_cseq == 6


def test_refresh_without_body_changes_the_etag_but_sends_no_notify(server):
    _subscribe(server)
    response, _ = _publish(server, "first")
    old = response.headers.get("SIP-ETag")
    refreshed, outgoing = _publish(server, None, etag=old, cseq=2)
    assert refreshed.status == 200 and outgoing == []
    assert refreshed.headers.get("SIP-ETag") not in (None, old)
    stale, _ = _publish(server, None, etag=old, cseq=3)
    assert stale.status == 412


def test_subscribe_reads_the_presentitys_rules_once(server):
    """Deciding the subscription and composing its first NOTIFY share one pres-rules read."""
    with CaptureQueriesContext(connection) as queries:
        response, outgoing = _subscribe(server)
    assert response.status == 200 and len(outgoing) == 1
    rule_reads = [q["sql"] for q in queries if "xcapapi_xcapdocument" in q["sql"]]
    pres_rules_reads = [sql for sql in rule_reads if "pres-rules" in sql]
    assert len(pres_rules_reads) == 1, pres_rules_reads


def test_every_statement_of_a_publication_and_a_subscription_uses_an_index(server):
    """What a PUBLISH lifecycle and a SUBSCRIBE dialog read, change and delete is found
    through an index: a scan of a whole table (the per-user caps counted a user's rows
    that way) grows with every other user's state."""
    with CaptureQueriesContext(connection) as queries:
        response, _ = _subscribe(server)
        to_tag = response.headers.get("To").rpartition("tag=")[2]
        request = _request(
            server, "SUBSCRIBE", "bob", headers=["Event: presence"], call_id="s1", cseq=2,
            to_tag=to_tag,
        )  # fmt: skip
        package = packages.get("presence")
        alice = "sip:alice@localhost"
        ended, _ = do_subscribe(server, request, UDP_WATCHER, package, 0, alice)
        first, _ = _publish(server, "first")
        etag = first.headers.get("SIP-ETag")
        refreshed, _ = _publish(server, None, etag=etag, cseq=2)
        etag = refreshed.headers.get("SIP-ETag")
        modified, _ = _publish(server, "second", etag=etag, cseq=3)
        removed, _ = _publish(server, None, etag=modified.headers.get("SIP-ETag"), expires=0)
    assert [r.status for r in (response, ended, first, refreshed, modified, removed)] == [200] * 6
    statements = [
        q["sql"] for q in queries if q["sql"].split()[0] in ("SELECT", "UPDATE", "DELETE")
    ]
    assert any(sql.startswith("SELECT COUNT(*)") for sql in statements)  # the caps are there
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert " SCAN " not in f" {plan} ", (sql, plan)
