"""The registrar over real UDP, TCP and WebSocket sockets (RFC 3261 §10, RFC 7616, RFC 5626).

Each test starts from no bindings for alice and checks what a phone sees (status, headers)
and what the server stored (rows of sipws_registration).
"""

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest

from tests.conftest import USERS
from tests.serverproc import provision
from tests.sipclient import SipClient, parse_challenges

TRANSPORTS = ["udp", "tcp", "ws"]


def bindings(server, user="alice", domain="localhost") -> list[dict]:
    return server.records(
        "SELECT * FROM sipws_registration WHERE aor = ? ORDER BY id", (f"sip:{user}@{domain}",)
    )


def unregister_all(server, user="alice") -> None:
    client = SipClient("udp", server, user=user)
    try:
        assert client.send_authenticated("REGISTER", contact="*", expires=0).status == 200
    finally:
        client.close()
    assert bindings(server, user) == []


def contact_params(value: str) -> dict[str, str]:
    """`<uri>;expires=600;q=0.5` → {'expires': '600', 'q': '0.5'}."""
    rest = value.split(">", 1)[1]
    return dict(re.findall(r';\s*([\w+.-]+)=("[^"]*"|[^;\s]+)', rest))


def local_port(client: SipClient) -> int:
    return client.ws.local_address[1] if client.transport == "ws" else client.local_port


def stored_expiry(row: dict) -> datetime:
    return datetime.fromisoformat(row["expires"]).replace(tzinfo=UTC)


def assert_expires_in(row: dict, seconds: int) -> None:
    left = (stored_expiry(row) - datetime.now(UTC)).total_seconds()
    assert seconds - 10 < left <= seconds, left


def assert_all_stale(reply) -> None:
    assert reply.status == 401
    challenges = parse_challenges(reply.text)
    assert challenges and all(c.get("stale") == "true" for c in challenges), reply.text


@pytest.fixture(params=TRANSPORTS)
def alice(request, server):
    unregister_all(server)
    client = SipClient(request.param, server)
    yield client
    client.close()


# Add, refresh, query, remove ------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_register_stores_the_binding(server, alice, algorithm):
    reply = alice.send_authenticated("REGISTER", algorithm=algorithm, expires=600)

    assert reply.status == 200, reply.text
    [contact] = reply.all("Contact")
    assert contact.startswith(f"<{alice.contact_uri()}>")
    assert contact_params(contact)["expires"] == "600"
    date = parsedate_to_datetime(reply.header("Date"))
    assert abs((date - datetime.now(UTC)).total_seconds()) < 60
    assert reply.header("Require") is None  # no outbound flow was asked for
    [row] = bindings(server)
    assert row["contact"] == alice.contact_uri()
    assert row["transport"] == alice.transport
    assert row["received"] == f"127.0.0.1:{local_port(alice)}"
    assert row["user_agent"] == "sipws-tests"
    assert_expires_in(row, 600)
    if alice.transport == "udp":
        assert row["connection"] == ""
    elif alice.transport == "tcp":
        assert re.fullmatch(r"tcp-[0-9a-f]+-\d+", row["connection"])  # tcp-<node tag>-<n>
    else:
        # the consumer of this process (embedded: no channel layer between them)
        assert re.fullmatch(r"ws\.local\.\d+\.\d+", row["connection"])


def test_refresh_updates_expiry_of_the_same_row(server, alice):
    assert alice.send_authenticated("REGISTER", expires=600).status == 200
    [before] = bindings(server)

    reply = alice.send_authenticated("REGISTER", expires=1800)

    assert reply.status == 200
    [contact] = reply.all("Contact")
    assert contact_params(contact)["expires"] == "1800"
    [after] = bindings(server)
    assert after["id"] == before["id"]
    assert after["cseq"] > before["cseq"]
    assert_expires_in(after, 1800)


def test_query_lists_bindings_and_changes_nothing(server, alice):
    assert alice.send_authenticated("REGISTER", expires=600).status == 200
    before = bindings(server)

    reply = alice.send_authenticated("REGISTER", contact=None)

    assert reply.status == 200
    [contact] = reply.all("Contact")
    assert contact.startswith(f"<{alice.contact_uri()}>")
    assert 590 <= int(contact_params(contact)["expires"]) <= 600
    assert bindings(server) == before


def test_expires_zero_removes_the_binding(server, alice):
    assert alice.send_authenticated("REGISTER", expires=600).status == 200

    reply = alice.send_authenticated("REGISTER", expires=0)

    assert reply.status == 200
    assert reply.all("Contact") == []
    assert bindings(server) == []


def test_star_with_expires_zero_removes_all_bindings(server, alice):
    assert alice.send_authenticated("REGISTER", expires=600).status == 200
    other = "<sip:alice@192.0.2.10:5060;transport=udp>"
    assert alice.send_authenticated("REGISTER", contact=other, expires=600).status == 200
    assert len(bindings(server)) == 2

    reply = alice.send_authenticated("REGISTER", contact="*", expires=0)

    assert reply.status == 200
    assert reply.all("Contact") == []
    assert bindings(server) == []


@pytest.mark.parametrize("expires", [600, None])
def test_star_without_expires_zero_is_refused(server, alice, expires):
    assert alice.send_authenticated("REGISTER", expires=600).status == 200
    before = bindings(server)

    reply = alice.send_authenticated("REGISTER", contact="*", expires=expires)

    assert reply.status == 400
    assert bindings(server) == before


@pytest.mark.parametrize("how", ["header", "contact param"])
def test_too_brief_expiry_gets_423_with_min_expires(server, alice, how):
    if how == "header":
        reply = alice.send_authenticated("REGISTER", expires=30)
    else:
        contact = f"<{alice.contact_uri()}>;expires=30"
        reply = alice.send_authenticated("REGISTER", contact=contact, expires=600)

    assert reply.status == 423
    assert reply.header("Min-Expires") == "60"
    assert bindings(server) == []


def test_long_expiry_is_capped_at_the_maximum(server, alice):
    reply = alice.send_authenticated("REGISTER", expires=7200)

    assert reply.status == 200
    [contact] = reply.all("Contact")
    assert contact_params(contact)["expires"] == "3600"
    [row] = bindings(server)
    assert_expires_in(row, 3600)


def test_several_contacts_with_q_values(server, alice):
    second = "sip:alice@192.0.2.20:5060;transport=udp"
    contact = f"<{alice.contact_uri()}>;q=0.5, <{second}>;q=1.0"

    reply = alice.send_authenticated("REGISTER", contact=contact, expires=600)

    assert reply.status == 200
    echoed = {c.split(">", 1)[0].lstrip("<"): contact_params(c) for c in reply.all("Contact")}
    assert set(echoed) == {alice.contact_uri(), second}
    assert float(echoed[alice.contact_uri()]["q"]) == 0.5
    assert float(echoed[second]["q"]) == 1.0
    stored = {row["contact"]: row["q"] for row in bindings(server)}
    assert stored == {alice.contact_uri(): 0.5, second: 1.0}


# Who may register -----------------------------------------------------------------------


def test_challenges_are_md5_first_and_last_with_sha256_between(server, alice):
    reply = alice.send("REGISTER", expires=600)

    assert reply.status == 401
    raw = reply.all("WWW-Authenticate")
    assert "algorithm=MD5" in raw[0]  # sipp and many phones read only the first
    assert "algorithm=MD5" in raw[-1]  # JsSIP and SIP.js keep only the last
    challenges = parse_challenges(reply.text)
    assert [c["algorithm"] for c in challenges] == ["MD5", "SHA-256", "MD5"]
    assert len({c["nonce"] for c in challenges}) == 1
    assert all(c["realm"] == "localhost" and c["qop"] == "auth" for c in challenges)
    assert all("stale" not in c for c in challenges)
    assert bindings(server) == []


def test_wrong_password_is_forbidden_and_stores_nothing(server, alice):
    reply = alice.send_authenticated("REGISTER", password="wrong", expires=600)

    assert reply.status == 403
    assert bindings(server) == []


def test_unknown_user_is_forbidden(server, alice):
    mallory = SipClient(alice.transport, server, user="mallory")
    try:
        reply = mallory.send_authenticated("REGISTER", expires=600)
    finally:
        mallory.close()

    assert reply.status == 403
    assert bindings(server, "mallory") == []


def test_someone_elses_aor_is_forbidden(server, alice):
    reply = alice.send_authenticated("REGISTER", to="sip:bob@localhost", expires=600)

    assert reply.status == 403
    assert not [r for r in bindings(server, "bob") if r["contact"] == alice.contact_uri()]


@pytest.mark.parametrize(
    "uri, to", [("sip:other.org", "sip:alice@other.org"), ("sip:localhost", "sip:alice@other.org")]
)
def test_domain_not_served_is_404(server, alice, uri, to):
    reply = alice.send_authenticated("REGISTER", uri=uri, to=to, expires=600)

    assert reply.status == 404
    assert server.rows("SELECT count(*) FROM sipws_registration WHERE aor LIKE '%other.org'") == [
        (0,)
    ]


def test_replayed_nonce_is_refused_as_stale(server, alice):
    challenge = alice.send("REGISTER", expires=600)
    md5 = parse_challenges(challenge.text)[0]
    auth = alice.authorization("REGISTER", md5, "MD5", nc=1, cnonce="0a4f113b")
    assert alice.send("REGISTER", expires=600, auth=auth).status == 200

    intruder = "<sip:alice@192.0.2.66:5060;transport=udp>"
    replay = alice.send("REGISTER", contact=intruder, expires=600, auth=auth)

    assert_all_stale(replay)
    assert [r["contact"] for r in bindings(server)] == [alice.contact_uri()]
    # The same nonce with a higher nonce-count is a legitimate reuse (RFC 7616 §3.4).
    again = alice.authorization("REGISTER", md5, "MD5", nc=2, cnonce="0a4f113b")
    assert alice.send("REGISTER", expires=900, auth=again).status == 200


def test_out_of_order_cseq_on_the_same_call_id_is_500(server, alice):
    assert alice.send_authenticated("REGISTER", expires=600, cseq=10).status == 200
    [before] = bindings(server)

    reply = alice.send_authenticated("REGISTER", expires=1800, cseq=5)

    assert reply.status == 500
    assert bindings(server) == [before]


# Nonce lifetime -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_nonce_server(tmp_path_factory):
    # Nonce timestamps have one-second resolution: 2 s keeps a prompt answer valid.
    proc = provision(
        tmp_path_factory.mktemp("nonce"), [("alice@localhost", "secret")], SIP_NONCE_LIFETIME="2"
    )
    proc.start()
    yield proc
    proc.stop()


def test_stale_nonce_gets_a_stale_challenge(short_nonce_server):
    server = short_nonce_server
    clients = [SipClient(transport, server) for transport in TRANSPORTS]
    try:
        old = [parse_challenges(c.send("REGISTER", expires=600).text)[0] for c in clients]
        time.sleep(2.1)
        for client, challenge in zip(clients, old, strict=True):
            auth = client.authorization("REGISTER", challenge, "MD5")
            stale = client.send("REGISTER", expires=600, auth=auth)
            assert_all_stale(stale)
            assert client.transport not in [r["transport"] for r in bindings(server)]
            fresh = parse_challenges(stale.text)[0]
            auth = client.authorization("REGISTER", fresh, "MD5")
            assert client.send("REGISTER", expires=600, auth=auth).status == 200
    finally:
        for client in clients:
            client.close()
    assert sorted(r["transport"] for r in bindings(server)) in (
        ["tcp", "udp", "ws"],
        ["tcp", "udp"],  # the WebSocket binding may already be gone with its connection
    )


# RFC 5626 outbound and connection-bound bindings ----------------------------------------


def test_outbound_websocket_flow_is_replaced_on_reconnect(server):
    unregister_all(server)
    instance = f'"<urn:uuid:{uuid.uuid4()}>"'
    first, second = SipClient("ws", server), SipClient("ws", server)
    try:
        replies = []
        for client in (first, second):
            contact = f"<{client.contact_uri()}>;+sip.instance={instance};reg-id=1"
            replies.append(
                client.send_authenticated(
                    "REGISTER", contact=contact, expires=600, headers=["Supported: path, outbound"]
                )
            )
            if client is first:
                [row_first] = bindings(server)

        for reply in replies:
            assert reply.status == 200
            assert reply.header("Require") == "outbound"
        [contact] = replies[1].all("Contact")
        params = contact_params(contact)
        assert params["+sip.instance"] == instance and params["reg-id"] == "1"
        [row] = bindings(server)
        assert row["instance_id"] == instance.strip('"') and row["reg_id"] == 1
        assert row["contact"] == second.contact_uri()
        assert row["connection"] != row_first["connection"]

        # The replaced connection closing must not take the new flow with it.
        first.close()
        assert not server.wait_for(lambda: bindings(server) == [], timeout=0.5)
    finally:
        first.close()
        second.close()
    assert server.wait_for(lambda: bindings(server) == [])


def test_closing_a_websocket_removes_only_its_binding(server):
    unregister_all(server)
    udp, ws = SipClient("udp", server), SipClient("ws", server)
    try:
        assert udp.send_authenticated("REGISTER", expires=600).status == 200
        assert ws.send_authenticated("REGISTER", expires=600).status == 200
        assert sorted(r["transport"] for r in bindings(server)) == ["udp", "ws"]

        ws.close()

        assert server.wait_for(lambda: [r["transport"] for r in bindings(server)] == ["udp"])
        assert bindings(server)[0]["contact"] == udp.contact_uri()
    finally:
        udp.close()
        ws.close()


def test_websocket_flows_of_one_process_are_local_and_distinct(server):
    """Embedded, a consumer reads its frames straight from Daphne, with no channel layer:
    each WebSocket gets its own local flow name, stored with its binding."""
    unregister_all(server)
    first, second = SipClient("ws", server), SipClient("ws", server)
    try:
        for client in (first, second):
            assert client.send_authenticated("REGISTER", expires=600).status == 200
        names = [row["connection"] for row in bindings(server)]
        assert len(set(names)) == 2
        assert all(name.startswith("ws.local.") and "!" not in name for name in names)
        first.close()
        assert server.wait_for(lambda: [r["connection"] for r in bindings(server)] == names[1:])
    finally:
        first.close()
        second.close()


def test_disabled_user_cannot_register_and_loses_bindings(server):
    carol = SipClient("udp", server, user="carol")
    try:
        assert carol.send_authenticated("REGISTER", expires=600).status == 200
        assert len(bindings(server, "carol")) == 1

        result = server.manage("sipuser", "disable", "carol@localhost", check=False)
        assert result.returncode == 0, result.stderr
        assert bindings(server, "carol") == []
        assert carol.send_authenticated("REGISTER", expires=600).status == 403
        assert bindings(server, "carol") == []

        result = server.manage("sipuser", "enable", "carol@localhost", check=False)
        assert result.returncode == 0, result.stderr
        assert carol.send_authenticated("REGISTER", expires=600).status == 200
    finally:
        carol.close()


def test_expiry_row_matches_reply(server, alice):
    """The expiry the phone is told is the one stored (no drift between the two)."""
    reply = alice.send_authenticated("REGISTER", expires=1000)
    [contact] = reply.all("Contact")
    [row] = bindings(server)
    told = parsedate_to_datetime(reply.header("Date")) + timedelta(
        seconds=int(contact_params(contact)["expires"])
    )
    assert abs((stored_expiry(row) - told).total_seconds()) < 2


def test_md5_only_challenge_for_clients_that_refuse_sha256(tmp_path):
    server = provision(tmp_path, USERS, SIP_DIGEST_ALGORITHMS="MD5").start()
    try:
        alice = SipClient("udp", server)
        reply = alice.send("REGISTER", expires=600)
        assert [c["algorithm"] for c in parse_challenges(reply.text)] == ["MD5"]
        assert alice.send_authenticated("REGISTER", expires=600).status == 200
        alice.close()
    finally:
        server.stop()
