"""Short-lived SIP credentials: the scheme (services/ephemeral) and POST /api/sip-credentials/.

The expected password is computed here from the TURN REST recipe, base64(HMAC(secret,
username)), not with the server's code.
"""

import base64
import hashlib
import hmac
import json
import time

import pytest
from django.test import Client

from sipws.services import ephemeral
from sipws.services.accounts import create_account, set_enabled

pytestmark = pytest.mark.django_db
SECRET = "shared with the TURN server"
URL = "/api/sip-credentials/"


@pytest.fixture(autouse=True)
def sip_settings(settings):
    settings.SIP = {**settings.SIP, "EPHEMERAL_SECRET": SECRET, "EPHEMERAL_LIFETIME": 600}
    return settings


@pytest.fixture
def alice():
    return create_account("alice@localhost", "secret")


def turn_password(username: str, digest=hashlib.sha256) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), username.encode(), digest).digest()).decode()


def ha1(username: str, realm: str, password: str, algorithm=hashlib.md5) -> str:
    return algorithm(f"{username}:{realm}:{password}".encode()).hexdigest()


def test_issued_credentials_follow_the_turn_rest_scheme(alice):
    issued = ephemeral.issue(alice, now=1_000_000)

    assert issued.expires == 1_000_600
    assert issued.username == "1000600:alice@localhost"
    assert issued.password == turn_password(issued.username)


def test_sha1_can_be_chosen_to_share_a_secret_with_older_turn_servers(alice, sip_settings):
    sip_settings.SIP = {**sip_settings.SIP, "EPHEMERAL_HMAC": "sha1"}
    issued = ephemeral.issue(alice)
    assert issued.password == turn_password(issued.username, hashlib.sha1)


def test_the_secret_defaults_to_one_derived_from_sip_secret(alice, sip_settings):
    sip_settings.SIP = {**sip_settings.SIP, "EPHEMERAL_SECRET": ""}
    issued = ephemeral.issue(alice)
    assert issued.password != turn_password(issued.username)
    derived = hmac.new(sip_settings.SIP["SECRET"].encode(), b"sip ephemeral credentials", "sha256")
    key = derived.hexdigest().encode()
    expected = hmac.new(key, issued.username.encode(), hashlib.sha256).digest()
    assert issued.password == base64.b64encode(expected).decode()


@pytest.mark.parametrize(
    ("algorithm", "hash_"), [("MD5", hashlib.md5), ("SHA-256", hashlib.sha256)]
)
def test_lookup_derives_the_ha1_of_the_password(alice, algorithm, hash_):
    issued = ephemeral.issue(alice)

    account, found = ephemeral.lookup(issued.username, "localhost", algorithm)

    assert account == alice
    assert found == ha1(issued.username, "localhost", issued.password, hash_)
    assert found not in (alice.ha1_md5, alice.ha1_sha256)


@pytest.mark.parametrize(
    "username",
    [
        "999:alice@localhost",  # expired long ago
        "{now}:alice@localhost",  # expires this second
        "{later}:alice",  # no domain: the HMAC must cover it
        "{later}:alice@example.com",  # another realm than the one asked
        "{later}:nobody@localhost",
        "soon:alice@localhost",
        "{later}:@localhost",
    ],
)
def test_lookup_refuses(alice, username):
    now = int(time.time())
    username = username.format(now=now, later=now + 60)
    assert ephemeral.lookup(username, "localhost", "MD5", now=now) == (None, None)


def test_lookup_refuses_a_disabled_account(alice):
    issued = ephemeral.issue(alice)
    set_enabled("alice@localhost", False)
    assert ephemeral.lookup(issued.username, "localhost", "MD5") == (None, None)


# The endpoint --------------------------------------------------------------------------


def logged_in(account, **kwargs) -> Client:
    client = Client(enforce_csrf_checks=True, **kwargs)
    client.force_login(account.user)
    return client


def post_with_csrf(client: Client, **extra):
    client.get("/admin/login/")  # any page that sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    return client.post(URL, HTTP_X_CSRFTOKEN=token, **extra)


def test_the_logged_in_user_gets_credentials(alice):
    before = int(time.time())
    response = post_with_csrf(logged_in(alice))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"username", "password", "expires", "ttl", "uri", "realm", "ws_url"}
    assert before + 600 <= body["expires"] <= int(time.time()) + 600
    assert body["username"] == f"{body['expires']}:alice@localhost"
    assert body["password"] == turn_password(body["username"])
    assert body["ttl"] == 600
    assert (body["uri"], body["realm"]) == ("sip:alice@localhost", "localhost")
    assert body["ws_url"] == "ws://testserver/ws"


def test_no_ha1_and_no_password_of_the_account_is_returned(alice):
    text = post_with_csrf(logged_in(alice)).content.decode()
    alice.refresh_from_db()
    for value in (alice.ha1_md5, alice.ha1_sha256, '"secret"'):
        assert value not in text


def test_over_https_the_websocket_url_is_wss(alice, sip_settings):
    response = post_with_csrf(logged_in(alice), secure=True, HTTP_REFERER="https://testserver/")
    assert response.json()["ws_url"] == "wss://testserver/ws"
    sip_settings.SIP = {**sip_settings.SIP, "WS_URL": "wss://sip.example.com/ws"}
    response = post_with_csrf(logged_in(alice))
    assert response.json()["ws_url"] == "wss://sip.example.com/ws"


def test_anonymous_is_refused():
    response = Client().post(URL)
    assert response.status_code == 403
    assert "password" not in response.content.decode()


def test_a_post_without_the_csrf_token_is_refused(alice):
    response = logged_in(alice).post(URL)
    assert response.status_code == 403
    assert "CSRF" in json.loads(response.content)["detail"]


def test_a_login_without_a_sip_account_gets_404(django_user_model):
    user = django_user_model.objects.create_user("webonly", password="x")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert post_with_csrf(client).status_code == 404


def test_a_disabled_sip_account_gets_403(alice):
    set_enabled("alice@localhost", False)
    assert post_with_csrf(logged_in(alice)).status_code == 403


def test_only_post(alice):
    assert logged_in(alice).get(URL).status_code == 405
