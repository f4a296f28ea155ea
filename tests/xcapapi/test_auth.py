"""Who may read and write: Digest with the SIP credentials (MD5 and SHA-256), Basic only when
XCAP_ALLOW_BASIC=1, the Django session with CSRF, own documents only, staff read all."""

import re
from http.cookiejar import CookieJar
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest

from tests.xcapapi.client import XcapClient, digest_header, parse_challenges
from tests.xcapapi.conftest import start_xcap_server

RL = "resource-lists/users/sip:{user}@localhost/index"
RL_MIME = "application/resource-lists+xml"
DOCUMENT = b"""<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="a"/></resource-lists>"""


@pytest.fixture
def alice_document(client):
    alice = client("alice")
    alice.put(RL.format(user="alice"), DOCUMENT, RL_MIME)
    return alice.get(RL.format(user="alice"))


def test_a_401_offers_md5_then_sha256(client):
    reply = client().get(RL.format(user="alice"))
    assert reply.status == 401
    challenges = parse_challenges(reply.all("WWW-Authenticate"))
    assert [c.get("algorithm") for c in challenges] == ["MD5", "SHA-256"]
    assert all(c["realm"] == "localhost" and c["qop"] == "auth" for c in challenges)
    assert not any(c["scheme"] == "Basic" for c in challenges)  # XCAP_ALLOW_BASIC is off


def test_sha256_digest_and_the_realm_of_the_xui_domain(client, xcap_server):
    alice = client("alice", algorithm="SHA-256")
    assert alice.put(RL.format(user="alice"), DOCUMENT, RL_MIME).status in (200, 201)
    dave = XcapClient(xcap_server.http_url, "dave@example.com")
    path = "resource-lists/users/sip:dave@example.com/index"
    challenge = parse_challenges(XcapClient(xcap_server.http_url).get(path).all("WWW-Authenticate"))
    assert challenge[0]["realm"] == "example.com"
    assert dave.put(path, DOCUMENT, RL_MIME).status in (200, 201)


def test_wrong_password_and_unknown_user_get_401(client, alice_document):
    assert client("alice", password="wrong").get(RL.format(user="alice")).status == 401
    assert client("mallory").get(RL.format(user="mallory")).status == 401


def test_users_touch_only_their_own_documents(client, alice_document):
    bob = client("bob")
    assert bob.get(RL.format(user="alice")).status == 403
    assert bob.put(RL.format(user="alice"), DOCUMENT, RL_MIME).status == 403
    assert bob.delete(RL.format(user="alice")).status == 403
    element = RL.format(user="alice") + '/~~/resource-lists/list[@name="a"]/@name'
    assert bob.put(element, b'"b"', "application/xcap-att+xml").status == 403
    reply = client("alice").get(RL.format(user="alice"))
    assert (reply.body, reply.etag) == (alice_document.body, alice_document.etag)


def test_staff_read_everything_but_write_only_their_own(client, alice_document):
    carol = client("carol")
    assert carol.get(RL.format(user="alice")).body == alice_document.body
    assert carol.get(RL.format(user="nobody")).status == 404
    assert carol.put(RL.format(user="alice"), DOCUMENT, RL_MIME).status == 403
    assert carol.delete(RL.format(user="alice")).status == 403
    assert client("alice").get(RL.format(user="alice")).etag == alice_document.etag


def test_replayed_and_forged_digests(client, xcap_server):
    path = "/xcap-root/" + RL.format(user="alice")
    anonymous = XcapClient(xcap_server.http_url)
    [md5, _sha] = parse_challenges(anonymous.get(RL.format(user="alice")).all("WWW-Authenticate"))
    header = digest_header("GET", path, "alice", "secret", md5, nc=1)
    first = anonymous.request("GET", path, headers={"Authorization": header}, raw=True)
    assert first.status in (200, 404)
    replayed = anonymous.request("GET", path, headers={"Authorization": header}, raw=True)
    assert replayed.status == 401
    assert "stale=true" in replayed.header("WWW-Authenticate")
    # A digest computed for another URI does not open this one.
    other = digest_header("GET", "/xcap-root/elsewhere", "alice", "secret", md5, nc=2)
    assert anonymous.request("GET", path, headers={"Authorization": other}, raw=True).status == 400
    forged = re.sub(
        r'nonce="[^"]+"',
        'nonce="1.AAAA.BBBB"',
        digest_header("GET", path, "alice", "secret", md5, nc=3),
    )
    assert anonymous.request("GET", path, headers={"Authorization": forged}, raw=True).status == 401


def test_basic_is_ignored_when_not_allowed(client):
    reply = client("alice", auth="basic").get(RL.format(user="alice"))
    assert reply.status == 401


def _session(base_url: str, login: str):
    """Log in to Django admin like a browser; returns the opener and the CSRF token."""
    jar = CookieJar()
    opener = build_opener(HTTPCookieProcessor(jar))
    page = opener.open(base_url + "/admin/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urlencode(
        {"username": login, "password": "secret", "csrfmiddlewaretoken": token, "next": "/admin/"}
    ).encode()
    opener.open(
        Request(base_url + "/admin/login/", form, headers={"Referer": base_url + "/admin/login/"})
    )
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    return opener, csrf


def test_django_session_with_csrf_on_writes(xcap_server):
    from urllib.error import HTTPError

    base = xcap_server.http_url
    opener, csrf = _session(base, "carol@localhost")
    url = f"{base}/xcap-root/" + RL.format(user="carol")

    def call(method, headers=None, body=None):
        request = Request(url, body, headers=headers or {}, method=method)
        try:
            response = opener.open(request)
            return response.status
        except HTTPError as error:
            return error.code

    put_headers = {"Content-Type": RL_MIME, "Referer": base + "/"}
    assert call("PUT", put_headers, DOCUMENT) == 403  # no CSRF token
    assert call("PUT", {**put_headers, "X-CSRFToken": csrf}, DOCUMENT) in (200, 201)
    assert call("GET") == 200
    assert call("DELETE", {"Referer": base + "/"}) == 403
    assert call("DELETE", {"X-CSRFToken": csrf, "Referer": base + "/"}) == 200


@pytest.fixture(scope="module")
def basic_server(tmp_path_factory):
    proc = start_xcap_server(tmp_path_factory, XCAP_ALLOW_BASIC="1")
    yield proc
    proc.stop()


def test_basic_when_allowed(basic_server):
    url = basic_server.http_url
    challenges = parse_challenges(
        XcapClient(url).get(RL.format(user="alice")).all("WWW-Authenticate")
    )
    assert [c["scheme"] for c in challenges] == ["Digest", "Digest", "Basic"]
    for login in ("alice", "alice@localhost"):
        alice = XcapClient(url, login, auth="basic")
        assert alice.put(RL.format(user="alice"), DOCUMENT, RL_MIME).status in (200, 201)
        assert alice.get(RL.format(user="alice")).body == DOCUMENT
    assert (
        XcapClient(url, "alice", password="nope", auth="basic").get(RL.format(user="alice")).status
        == 401
    )
    assert XcapClient(url, "bob", auth="basic").get(RL.format(user="alice")).status == 403
    # Digest still works alongside.
    assert XcapClient(url, "alice@localhost").get(RL.format(user="alice")).status == 200


def test_raw_quotes_in_the_digest_uri_as_sip_simple_clients_send_them(client):
    alice = client("alice", escape_uri=False)
    assert alice.put(RL.format(user="alice"), DOCUMENT, RL_MIME).status in (200, 201)
    element = RL.format(user="alice") + '/~~/resource-lists/list[@name="a"]/entry[@uri="sip:b@x"]'
    created = alice.put(element, b'<entry uri="sip:b@x"/>', "application/xcap-el+xml")
    assert created.status == 201
    assert alice.get(element + "/@uri").body == b'"sip:b@x"'
