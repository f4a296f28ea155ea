"""Rules kept on an external XCAP server: a second instance of this server holds them.

`external_server` holds the documents (with a staff service account, `presence`);
`polled` is a presence server that revalidates them every second, `manual` one that never
polls (only a miss, the refresh endpoint or `manage.py xcaprefresh` fetch). Each test uses
presentities of its own, since both presence servers read the same external documents.
The XCAP client and the cache's bookkeeping are tested in process at the end.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.test import Client

from sipws.core.digest import ha1, parse_credentials, verify
from sipws.services.accounts import create_account
from tests.presence import assert_silent, next_notify, pidf, state, tuples, watch
from tests.serverproc import ServerProcess
from tests.xcapapi.client import XcapClient
from xcapapi import external, store
from xcapapi.models import XcapDocument
from xcapapi.signals import document_changed
from xcapapi.xcap_client import Fetched, XcapClientError
from xcapapi.xcap_client import XcapClient as ExternalClient

RULES_TYPE = "application/auth-policy+xml"
PIDF_TYPE = "application/pidf+xml"
BOB = "sip:bob@localhost"
CAROL = "sip:carol@localhost"
USERS = ["alice", "bob", "carol", "dave", "erin", "frank"]
STAFF = ["presence", "admin"]  # the service account on the external server; an operator
ADMIN, VIEWER = "a" * 40, "v" * 40  # REST API tokens of admin (staff) and of a non-staff user


def aor(user: str) -> str:
    return f"sip:{user}@localhost"


def path(user: str, auid: str = "pres-rules") -> str:
    return f"{auid}/users/{aor(user)}/index"


def rules(*allowed: str, handling: str = "allow") -> str:
    identities = "".join(f'<cp:one id="{uri}"/>' for uri in allowed)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy" '
        'xmlns:pr="urn:ietf:params:xml:ns:pres-rules">'
        f'<cp:rule id="r1"><cp:conditions><cp:identity>{identities}</cp:identity>'
        f"</cp:conditions><cp:actions><pr:sub-handling>{handling}</pr:sub-handling>"
        "</cp:actions></cp:rule></cp:ruleset>"
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One migrated database with the users, copied for every server: migrating is slow."""
    proc = ServerProcess(tmp_path_factory.mktemp("template"))
    proc.manage("migrate", "-v0")
    script = "\n".join(
        [
            "from django.contrib.auth.models import User",
            "from sipws.services.accounts import create_account",
            # Django logins (slow password hashing) only where staff status needs one.
            *(f"create_account('{u}@localhost', 'secret', create_login=False)" for u in USERS),
            *(f"create_account('{user}@localhost', 'secret')" for user in STAFF),
            f"User.objects.filter(username__in={[f'{s}@localhost' for s in STAFF]!r})"
            ".update(is_staff=True)",
            "from rest_framework.authtoken.models import Token",
            "admin = User.objects.get(username='admin@localhost')",
            f"Token.objects.create(user=admin, key={ADMIN!r})",
            f"Token.objects.create(user=User.objects.create(username='viewer'), key={VIEWER!r})",
        ]
    )
    proc.manage("shell", "-c", script)
    return proc.data_dir


def start(tmp_path_factory, template, **env) -> ServerProcess:
    data_dir = tmp_path_factory.mktemp("server")
    for file in template.glob("db.sqlite3*"):
        shutil.copy(file, data_dir / file.name)
    return ServerProcess(data_dir, **env).start()


def presence_server(tmp_path_factory, template, external_server, **env) -> ServerProcess:
    return start(
        tmp_path_factory,
        template,
        PRESENCE_DEFAULT_POLICY="confirm",
        XCAP_EXTERNAL_ROOT=f"{external_server.http_url}/xcap-root",
        XCAP_EXTERNAL_USER="presence",
        XCAP_EXTERNAL_PASSWORD="secret",
        **env,
    )


@pytest.fixture(scope="module")
def external_server(tmp_path_factory, template):
    proc = start(tmp_path_factory, template)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def polled(tmp_path_factory, template, external_server):
    proc = presence_server(
        tmp_path_factory, template, external_server, XCAP_EXTERNAL_POLL_INTERVAL="1"
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def manual(tmp_path_factory, template, external_server):
    proc = presence_server(
        tmp_path_factory, template, external_server, XCAP_EXTERNAL_POLL_INTERVAL="0"
    )
    yield proc
    proc.stop()


def owner(server: ServerProcess, user: str) -> XcapClient:
    return XcapClient(server.http_url, f"{user}@localhost")


def cached(server: ServerProcess, user: str, auid: str = "pres-rules") -> dict | None:
    rows = server.records(
        "SELECT * FROM xcapapi_xcapdocument WHERE auid = ? AND xui = ?", (auid, aor(user))
    )
    return rows[0] if rows else None


def logged(server: ServerProcess, *parts: str) -> bool:
    return any(all(part in line for part in parts) for line in server.output)


def refresh(server: ServerProcess, body, token: str | None = ADMIN, **headers):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **headers}
    if token:
        headers["Authorization"] = f"Token {token}"
    return XcapClient(server.http_url).request(
        "POST", "/api/xcap/refresh/", data, headers, raw=True
    )


# Over real sockets ----------------------------------------------------------------------


def test_rules_put_on_the_external_server_reach_a_pending_watcher_by_the_poll(
    external_server, polled, ua
):
    bob = ua("udp", polled, user="bob")
    _, first = watch(bob, aor("alice"))
    assert state(first)[0] == "pending"

    put = owner(external_server, "alice").put(path("alice"), rules(BOB), RULES_TYPE)
    assert put.status == 201
    notify = next_notify(bob)
    assert state(notify)[0] == "active"
    row = cached(polled, "alice")
    assert row["source"] == XcapDocument.Source.EXTERNAL and row["etag"] == put.etag

    # Later polls revalidate with If-None-Match and leave the copy alone.
    assert external_server.wait_for(
        lambda: logged(external_server, f"GET /xcap-root/{path('alice')} -> 304"), timeout=5
    )
    assert cached(polled, "alice")["updated"] == row["updated"]
    assert_silent(bob)


def test_a_pidf_manipulation_document_is_presence_and_a_deleted_rule_ends_the_allowance(
    external_server, polled, ua
):
    carol = owner(external_server, "carol")
    assert carol.put(path("carol"), rules(BOB), RULES_TYPE).status == 201
    bob = ua("udp", polled, user="bob")
    _, first = watch(bob, aor("carol"))
    if state(first)[0] == "pending":  # the poll had not fetched the rules yet
        assert state(next_notify(bob))[0] == "active"

    document = pidf(aor("carol"), "xcap", note="set over XCAP")
    pidf_path = path("carol", "pidf-manipulation")
    assert carol.put(pidf_path, document, PIDF_TYPE).status == 201
    assert tuples(next_notify(bob).body) == [("xcap", "open", "set over XCAP")]

    # A 404 from the external server deletes the cached copy: bob is pending again.
    assert carol.delete(path("carol")).status == 200
    assert state(next_notify(bob))[0] == "pending"
    assert cached(polled, "carol") is None
    assert cached(polled, "carol", "pidf-manipulation")["source"] == 1


def test_a_first_subscription_fetches_the_rules_without_waiting_for_them(
    external_server, manual, ua
):
    assert owner(external_server, "dave").put(path("dave"), rules(BOB), RULES_TYPE).status == 201
    bob = ua("udp", manual, user="bob")
    _, first = watch(bob, aor("dave"))

    # Decided at once by PRESENCE_DEFAULT_POLICY; the fetched rules follow (no polling here).
    assert state(first)[0] == "pending"
    assert state(next_notify(bob))[0] == "active"
    assert cached(manual, "dave")["source"] == XcapDocument.Source.EXTERNAL


def test_the_refresh_endpoint_and_command_fetch_a_changed_document(external_server, manual, ua):
    erin = owner(external_server, "erin")
    bob = ua("udp", manual, user="bob")
    _, first = watch(bob, aor("erin"))
    assert state(first)[0] == "pending"
    # The miss fetched erin's documents (none yet) and nothing will again: no polling.
    last = f"GET /xcap-root/{path('erin', 'pidf-manipulation')} -> 404"
    assert external_server.wait_for(lambda: logged(external_server, last), timeout=5)
    assert erin.put(path("erin"), rules(BOB), RULES_TYPE).status == 201
    assert_silent(bob, 0.5)

    reply = refresh(manual, {"xui": aor("erin"), "auid": "pres-rules"})
    assert reply.status == 202, reply.body
    assert json.loads(reply.body) == {
        "xui": aor("erin"),
        "auids": ["pres-rules"],
        "status": "scheduled",
    }
    assert state(next_notify(bob))[0] == "active"

    assert erin.put(path("erin"), rules(BOB, handling="block"), RULES_TYPE).status == 200
    done = manual.manage("xcaprefresh", aor("erin"))
    assert done.stdout == (
        "sip:erin@localhost: pres-rules changed, "
        "org.openmobilealliance.pres-rules absent, pidf-manipulation absent\n"
    )
    value, params = state(next_notify(bob))
    assert (value, params.get("reason")) == ("terminated", "rejected")


def test_the_refresh_endpoint_is_for_staff(manual):
    body = {"xui": aor("frank")}
    denied = refresh(manual, body, token=None)
    assert denied.status == 401 and denied.header("WWW-Authenticate") == "Token"
    assert refresh(manual, body, token="x" * 40).status == 401
    assert refresh(manual, body, token=VIEWER).status == 403
    assert refresh(manual, {"xui": "frank"}).status == 400
    assert refresh(manual, {"xui": "sip:frank@elsewhere.org"}).status == 400
    assert refresh(manual, {"xui": aor("frank"), "auid": "resource-lists"}).status == 400
    assert refresh(manual, b"{not json").status == 400
    reply = refresh(manual, body)
    assert reply.status == 202
    assert json.loads(reply.body)["auids"] == list(external.AUIDS)


def test_the_command_says_what_it_cannot_do(manual):
    refused = manual.manage("xcaprefresh", "sip:frank@elsewhere.org", check=False)
    assert refused.returncode != 0 and "not served" in refused.stderr
    wrong = manual.manage("xcaprefresh", aor("frank"), "--auid", "resource-lists", check=False)
    assert wrong.returncode != 0


def test_documents_kept_elsewhere_are_read_only_here(external_server, polled):
    alice = owner(polled, "alice")
    refused = alice.put(path("alice"), rules(CAROL), RULES_TYPE)
    assert refused.status == 405 and refused.header("Allow") == "GET"
    assert alice.delete(path("frank", "pidf-manipulation")).status == 405
    lists = '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>'
    put = alice.put(path("alice", "resource-lists"), lists, "application/resource-lists+xml")
    assert put.status in (200, 201)


def test_an_unreachable_external_server_keeps_the_cached_rules(tmp_path_factory, template, ua):
    gone = start(tmp_path_factory, template)
    server = presence_server(
        tmp_path_factory,
        template,
        gone,
        XCAP_EXTERNAL_POLL_INTERVAL="1",
        XCAP_EXTERNAL_TIMEOUT="0.5",
    )
    try:
        assert owner(gone, "alice").put(path("alice"), rules(BOB, CAROL), RULES_TYPE).status == 201
        bob = ua("udp", server, user="bob")
        _, first = watch(bob, aor("alice"))
        if state(first)[0] == "pending":
            assert state(next_notify(bob))[0] == "active"

        gone.stop()
        assert server.wait_for(lambda: logged(server, "unreachable", gone.http_url), timeout=5)
        assert_silent(bob, 1.2)  # a poll or more later, bob is still active
        carol = ua("udp", server, user="carol")
        _, notify = watch(carol, aor("alice"))
        assert state(notify)[0] == "active"
        assert cached(server, "alice")["source"] == XcapDocument.Source.EXTERNAL
    finally:
        server.stop()
        gone.stop()


# In process -----------------------------------------------------------------------------


class StubXcap(BaseHTTPRequestHandler):
    """One document at /root/pres-rules/users/sip:a@b/index, behind Basic or SHA-256 Digest."""

    scheme = "basic"
    seen: list[dict] = []

    def do_GET(self):
        header = self.headers.get("Authorization", "")
        self.seen.append({"path": self.path, "authorization": header})
        if not self._authorized(header):
            self.send_response(401)
            if self.scheme == "basic":
                self.send_header("WWW-Authenticate", 'Basic realm="b"')
            else:
                challenge = 'Digest realm="b", nonce="n1", algorithm=SHA-256, qop="auth"'
                self.send_header("WWW-Authenticate", challenge)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if "pres-rules" not in self.path:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.headers.get("If-None-Match") == '"tag-1"':
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", 'W/"tag-1"')
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"<a/>\n")

    def _authorized(self, header: str) -> bool:
        if self.scheme == "basic":
            return header == "Basic " + base64.b64encode(b"svc:pw").decode()
        credentials = parse_credentials(header)
        return (
            credentials is not None
            and credentials.uri == self.path
            and verify(credentials, method="GET", ha1=ha1("svc", "b", "pw", "SHA-256"))
        )

    def log_message(self, *args):
        pass


@pytest.fixture(params=["basic", "digest"])
def stub(request):
    handler = type("Handler", (StubXcap,), {"scheme": request.param, "seen": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def test_the_client_answers_the_challenge_once_then_sends_credentials_ahead(stub):
    server, handler = stub
    root = f"http://127.0.0.1:{server.server_port}/root"
    client = ExternalClient(root, user="svc", password="pw", timeout=2, max_size=100)

    assert client.get("pres-rules", "sip:a@b") == Fetched(200, b"<a/>\n", "tag-1")
    assert client.get("pres-rules", "sip:a@b", etag="tag-1") == Fetched(304)
    assert client.get("pidf-manipulation", "sip:a@b") == Fetched(404)
    assert [bool(seen["authorization"]) for seen in handler.seen] == [False, True, True, True]
    assert handler.seen[0]["path"] == "/root/pres-rules/users/sip:a@b/index"


def test_the_client_reports_an_unreachable_server_and_a_refused_account(stub):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    client = ExternalClient(f"http://127.0.0.1:{closed}", timeout=1, max_size=100)
    with pytest.raises(XcapClientError) as down:
        client.get("pres-rules", "sip:a@b")
    assert down.value.unreachable

    server, _handler = stub
    root = f"http://127.0.0.1:{server.server_port}/root"
    wrong = ExternalClient(root, user="svc", password="wrong", timeout=2, max_size=100)
    with pytest.raises(XcapClientError) as refused:
        wrong.get("pres-rules", "sip:a@b")
    assert not refused.value.unreachable and "401" in refused.value.reason


@pytest.fixture
def changes():
    seen = []

    def receiver(sender, **kwargs):
        seen.append((kwargs["auid"], kwargs["deleted"]))

    document_changed.connect(receiver)
    yield seen
    document_changed.disconnect(receiver)


@pytest.mark.django_db
def test_apply_mirrors_the_external_answer(changes, django_capture_on_commit_callbacks):
    xui = "sip:alice@localhost"
    body = rules(BOB).encode()
    with django_capture_on_commit_callbacks(execute=True):
        assert external.apply("pres-rules", xui, Fetched(404)) == external.ABSENT
        assert external.apply("pres-rules", xui, Fetched(200, body, "e1")) == external.CREATED
        assert external.apply("pres-rules", xui, Fetched(304)) == external.UNCHANGED
        # Same bytes under a new tag: the tag is kept for the next conditional GET, silently.
        assert external.apply("pres-rules", xui, Fetched(200, body, "e2")) == external.UNCHANGED
        assert external.apply("pres-rules", xui, Fetched(200, b"<broken", "e3")) == external.INVALID
    row = XcapDocument.objects.get(auid="pres-rules", xui=xui)
    assert (bytes(row.body), row.etag, row.source) == (body, "e2", XcapDocument.Source.EXTERNAL)
    assert changes == [("pres-rules", False)]

    with django_capture_on_commit_callbacks(execute=True):
        long_tag = "x" * 200
        changed = rules(CAROL).encode()
        assert external.apply("pres-rules", xui, Fetched(200, changed, long_tag)) == "changed"
        assert XcapDocument.objects.get(auid="pres-rules").etag.startswith("sha256-")
        assert external.apply("pres-rules", xui, Fetched(404)) == external.DELETED
    assert changes[1:] == [("pres-rules", False), ("pres-rules", True)]


@pytest.mark.django_db
def test_a_local_copy_is_no_rule_in_external_mode(settings, monkeypatch):
    from xcapapi.policy import ruleset_for

    store.save_document(auid="pres-rules", xui="sip:alice@localhost", name="index", body=b"<x/>")
    assert ruleset_for("sip:alice@localhost") is not None
    settings.XCAP = {**settings.XCAP, "EXTERNAL_ROOT": "http://127.0.0.1:9/xcap-root"}
    cache = external.ExternalXcap.from_settings()
    monkeypatch.setattr(external, "_fetcher", cache)

    assert ruleset_for("sip:alice@localhost") is None
    assert ruleset_for("sip:alice@localhost") is None
    assert list(cache._wanted) == ["sip:alice@localhost"]  # asked for once


def test_a_miss_is_asked_for_once_until_its_answer_grows_old():
    cache = external.ExternalXcap(ExternalClient("http://x", timeout=1, max_size=1), 60)
    cache.want("sip:a@b", now=0)
    cache.want("sip:a@b", now=1)
    cache.want("not an xui", now=1)
    assert list(cache._wanted) == ["sip:a@b"]
    cache._wanted.clear()
    cache.want("sip:a@b", now=external.RETRY_UNREACHABLE + 1)
    assert list(cache._wanted) == ["sip:a@b"]


@pytest.mark.django_db
def test_the_endpoint_says_409_without_an_external_server():
    account = create_account("admin@localhost", "secret")
    account.user.is_staff = True
    account.user.save()
    client = Client()
    client.force_login(account.user)
    reply = client.post(
        "/api/xcap/refresh/", {"xui": "sip:alice@localhost"}, content_type="application/json"
    )
    assert reply.status_code == 409
