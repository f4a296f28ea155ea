"""Short-lived credentials from POST /api/sip-credentials/ against the real server's digest
check: they register their own user over WebSocket and UDP, and nothing else.

The page's session is made server-side (as a login would), the credentials are fetched
over HTTP with the session cookie and a CSRF token, then used by SIP clients.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from tests.chat import relayed, start_message
from tests.serverproc import provision
from tests.sipclient import SipClient

USERS = [("alice@localhost", "secret"), ("bob@localhost", "secret")]
SECRET = "integration secret"
SESSION = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
user = User.objects.get(username={login!r})
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = provision(tmp_path_factory.mktemp("eph"), USERS, SIP_EPHEMERAL_SECRET=SECRET)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def alice_session(server) -> str:
    output = server.manage("shell", "-c", SESSION.format(login="alice@localhost")).stdout
    return output.split()[-1]  # after what `shell` says about its imports


@pytest.fixture
def clients(server):
    made = []

    def make(transport, user="alice"):
        made.append(SipClient(transport, server, user=user))
        return made[-1]

    yield make
    for client in made:
        client.close()


def post_credentials(server, session: str | None, *, csrf: bool = True) -> tuple[int, str]:
    token = secrets.token_hex(16)  # a CSRF secret of our choosing, as cookie and header
    headers = {"Cookie": f"csrftoken={token}" + (f"; sessionid={session}" if session else "")}
    if csrf:
        headers["X-CSRFToken"] = token
    request = Request(f"{server.http_url}/api/sip-credentials/", b"", headers, method="POST")
    try:
        with urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def credentials(server, alice_session) -> dict:
    status, text = post_credentials(server, alice_session)
    assert status == 200, text
    return json.loads(text)


def register(client: SipClient, creds: dict, *, algorithm="MD5", to=None, username=None):
    return client.send_authenticated(
        "REGISTER",
        algorithm=algorithm,
        username=username or creds["username"],
        password=creds["password"],
        expires=600,
        to=to,
    )


def password(username: str) -> str:
    mac = hmac.new(SECRET.encode(), username.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def test_the_page_gets_credentials_and_none_of_the_accounts_secrets(server, credentials):
    text = json.dumps(credentials)
    [(ha1_md5, ha1_sha256)] = server.rows(
        "SELECT ha1_md5, ha1_sha256 FROM sipws_sipaccount WHERE username = 'alice'"
    )
    assert ha1_md5 not in text and ha1_sha256 not in text and '"secret"' not in text
    assert credentials["uri"] == "sip:alice@localhost"
    assert credentials["ws_url"] == f"ws://127.0.0.1:{server.http_port}/ws"
    assert credentials["expires"] > time.time() + 3000  # SIP_EPHEMERAL_LIFETIME: 3600


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
@pytest.mark.parametrize("transport", ["ws", "udp"])
def test_they_register_their_user(server, clients, credentials, transport, algorithm):
    alice = clients(transport)

    reply = register(alice, credentials, algorithm=algorithm)

    assert reply.status == 200, reply.text
    rows = server.rows(
        "SELECT transport FROM sipws_registration WHERE aor = 'sip:alice@localhost'"
        " AND call_id = ?",
        (alice.call_id,),
    )
    assert rows == [(transport,)]


def test_they_fail_for_another_users_address(server, clients, credentials):
    alice = clients("udp")

    reply = register(alice, credentials, to="sip:bob@localhost")

    assert reply.status == 403
    assert server.rows("SELECT * FROM sipws_registration WHERE aor = 'sip:bob@localhost'") == []


def test_expired_credentials_fail_with_a_new_challenge(server, clients):
    # 401, not 403: a client re-sending stale credentials on a refresh (SIP.js does) is
    # told to authenticate again, and the page fetches fresh credentials.
    alice = clients("ws")
    username = f"{int(time.time()) - 1}:alice@localhost"
    reply = register(alice, {"username": username, "password": password(username)})
    assert reply.status == 401
    assert reply.all("WWW-Authenticate")
    rows = server.rows("SELECT * FROM sipws_registration WHERE call_id = ?", (alice.call_id,))
    assert rows == []


@pytest.mark.parametrize("how", ["wrong password", "later expiry", "other user"])
def test_forged_credentials_fail(clients, credentials, how):
    username, secret = credentials["username"], credentials["password"]
    if how == "wrong password":
        secret = base64.b64encode(b"\0" * 32).decode()
    elif how == "later expiry":
        username = f"{credentials['expires'] + 86400}:alice@localhost"
    else:
        username = username.replace("alice@", "bob@")
    alice = clients("udp", "bob" if how == "other user" else "alice")

    assert register(alice, {"username": username, "password": secret}).status == 403


def test_anonymous_and_csrf_less_requests_are_refused(server, alice_session):
    status, text = post_credentials(server, None)
    assert status == 403 and "password" not in text
    status, _ = post_credentials(server, alice_session, csrf=False)
    assert status == 403


def test_they_send_messages_as_their_user_only(server, clients, credentials):
    bob = clients("udp", "bob")
    assert bob.send_authenticated("REGISTER", expires=600).status == 200
    alice = clients("ws")
    creds = {"username": credentials["username"], "password": credentials["password"]}

    start_message(alice, "bob", "from the web page", **creds)
    message = relayed(bob)
    bob.answer(message)

    assert alice.recv().status == 200
    assert message.header("From").startswith("<sip:alice@localhost>")
    pretender = clients("udp", "bob")  # From bob, with alice's credentials
    start_message(pretender, "alice", **creds)
    assert pretender.recv().status == 403
