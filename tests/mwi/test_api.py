"""The MWI REST API over real HTTP, observed by real SIP subscribers (UDP and WebSocket):
PUT/GET/DELETE, authentication and permission, SIP PUBLISH of the same state (the newest
wins), owner-only subscriptions, bad input that changes nothing, and the OpenAPI schema
and its Swagger UI page, served without any CDN (issue 5, items 1-2).
"""

import re

import pytest

from tests.mwi.api import Api
from tests.presence import assert_silent, next_notify, publications, publish, subscribe, watch

ALICE = "sip:alice@localhost"
EVENT = "message-summary"
CONTENT_TYPE = "application/simple-message-summary"
URL = "/api/mwi/alice@localhost/"
EXAMPLE = {
    "messages_waiting": True,
    "account": "sip:*97@example.com",
    "voice": {"new": 2, "old": 8, "urgent_new": 0, "urgent_old": 1},
}
EXAMPLE_BODY = (
    "Messages-Waiting: yes\r\nMessage-Account: sip:*97@example.com\r\nVoice-Message: 2/8 (0/1)\r\n"
)
NO_MESSAGES = "Messages-Waiting: no\r\n"
CLASSES = ("voice", "fax", "pager", "multimedia", "text", "none")


def stored(body: dict) -> dict:
    """What the API answers for `body`: every class present, absent ones null."""
    out = {"messages_waiting": body["messages_waiting"], "account": body.get("account")}
    for name in CLASSES:
        counts = body.get(name)
        out[name] = None if counts is None else {"urgent_new": 0, "urgent_old": 0, **counts}
    return out


def mwi_watch(client, presentity=ALICE):
    """Subscribe to message-summary; the first NOTIFY must carry the current state."""
    response, notify = watch(client, presentity, event=EVENT)
    assert notify.header("Event") == EVENT
    assert notify.header("Content-Type") == CONTENT_TYPE
    return response, notify


def voice(new: int, old: int = 0) -> str:
    return f"Messages-Waiting: {'yes' if new else 'no'}\r\nVoice-Message: {new}/{old}\r\n"


def test_put_notifies_a_udp_and_a_websocket_subscriber(mwi_server, ua, api):
    phone = ua("udp", mwi_server, user="alice")
    browser = ua("ws", mwi_server, user="alice")
    for watcher in (phone, browser):
        _, first = mwi_watch(watcher)
        assert first.body == NO_MESSAGES  # the neutral state: a body, never none

    answer = api.put(URL, EXAMPLE)

    assert answer.status == 200, answer.body
    assert answer.json == stored(EXAMPLE)
    for watcher in (phone, browser):
        notify = next_notify(watcher)
        assert notify.header("Subscription-State").startswith("active;expires=")
        assert notify.header("Content-Type") == CONTENT_TYPE
        assert notify.body == EXAMPLE_BODY


def test_get_reads_what_put_stored(mwi_server, api):
    assert api.get(URL).json == stored({"messages_waiting": False})
    body = {
        "messages_waiting": True,
        "fax": {"new": 1, "old": 0},
        "text": {"new": 3, "old": 4, "urgent_new": 3, "urgent_old": 0},
        "none": None,
    }
    assert api.put(URL, body).json == stored(body)

    answer = api.get(URL)

    assert answer.status == 200
    assert answer.header("Content-Type") == "application/json"
    assert answer.json == stored(body)
    [row] = publications(mwi_server)
    assert row["event"] == EVENT
    assert (
        bytes(row["body"])
        == b"Messages-Waiting: yes\r\nFax-Message: 1/0\r\nText-Message: 3/4 (3/0)\r\n"
    )
    assert api.get("/api/mwi/bob@localhost/").json == stored({"messages_waiting": False})


def test_a_second_put_replaces_the_first(mwi_server, api):
    api.put(URL, EXAMPLE)
    api.put(URL, {"messages_waiting": False, "voice": {"new": 0, "old": 9}})

    assert api.get(URL).json == stored({"messages_waiting": False, "voice": {"new": 0, "old": 9}})
    assert len(publications(mwi_server)) == 1


def test_delete_clears_and_subscribers_hear_no_messages(mwi_server, ua, api):
    phone = ua("udp", mwi_server, user="alice")
    api.put(URL, EXAMPLE)
    _, first = mwi_watch(phone)
    assert first.body == EXAMPLE_BODY  # the current state in the first NOTIFY

    answer = api.delete(URL)

    assert answer.status == 204 and answer.body == b""
    assert next_notify(phone).body == NO_MESSAGES
    assert api.get(URL).json == stored({"messages_waiting": False})
    assert publications(mwi_server) == []
    assert api.delete(URL).status == 204  # nothing left to clear: still 204, no NOTIFY
    assert_silent(phone)


def test_delete_clears_sip_publications_too(mwi_server, ua, api):
    alice = ua("udp", mwi_server, user="alice")
    assert publish(alice, voice(5), event=EVENT, content_type=CONTENT_TYPE).status == 200
    api.put(URL, EXAMPLE)
    assert len(publications(mwi_server)) == 2

    assert api.delete(URL).status == 204

    assert publications(mwi_server) == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize(
    "mailbox", ["nosuch@localhost", "alice@nowhere.example", "alice", "@localhost"]
)
def test_unknown_mailbox_is_404(mwi_server, api, method, mailbox):
    answer = api.request(method, f"/api/mwi/{mailbox}/", EXAMPLE if method == "PUT" else None)

    assert answer.status == 404
    assert "No SIP account" in answer.json["detail"]
    assert mwi_server.rows("SELECT COUNT(*) FROM sipws_presentity") == [(0,)]


def test_the_domain_of_a_mailbox_is_case_insensitive(api):
    assert api.put("/api/mwi/alice@LocalHost/", EXAMPLE).status == 200
    assert api.get(URL).json == stored(EXAMPLE)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("authorization", [None, "Token wrong", "Token ", "Bearer abc", "Basic x"])
def test_missing_or_wrong_token_is_401(mwi_server, api, method, authorization):
    client = api.as_token(None)
    headers = {"Authorization": authorization} if authorization else {}
    body = EXAMPLE if method == "PUT" else None

    answer = client.request(method, URL, body, headers=headers)

    assert answer.status == 401, answer.body
    assert answer.header("WWW-Authenticate") == "Token"
    assert answer.json["detail"]
    assert publications(mwi_server) == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_token_without_the_permission_is_403(mwi_server, api, method):
    api.put(URL, EXAMPLE)
    before = publications(mwi_server)
    nobody = api.as_token(api.tokens["nobody"])

    answer = nobody.request(method, URL, {"messages_waiting": False} if method == "PUT" else None)

    assert answer.status == 403
    assert "mwi.push_mwi" in answer.json["detail"]
    assert publications(mwi_server) == before


def test_a_staff_session_works_and_needs_its_csrf_token(mwi_server, api):
    admin = Api.logged_in(mwi_server.http_url, "admin", "adminpw")

    assert admin.put(URL, EXAMPLE).status == 403  # no CSRF token
    assert publications(mwi_server) == []
    answer = admin.put(URL, EXAMPLE, headers=admin.csrf)
    assert answer.status == 200, answer.body
    assert admin.get(URL).json == stored(EXAMPLE)
    assert admin.delete(URL, headers=admin.csrf).status == 204


def test_sip_publish_then_rest_put_the_newest_wins(mwi_server, ua, api):
    phone = ua("udp", mwi_server, user="alice")
    mwi_watch(phone)
    voicemail = ua("udp", mwi_server, user="alice")

    assert publish(voicemail, voice(1), event=EVENT, content_type=CONTENT_TYPE).status == 200
    assert next_notify(phone).body == voice(1)
    assert api.get(URL).json == stored({"messages_waiting": True, "voice": {"new": 1, "old": 0}})
    api.put(URL, EXAMPLE)

    assert next_notify(phone).body == EXAMPLE_BODY
    assert api.get(URL).json == stored(EXAMPLE)


def test_rest_put_then_sip_publish_the_newest_wins(mwi_server, ua, api):
    phone = ua("ws", mwi_server, user="alice")
    mwi_watch(phone)
    voicemail = ua("udp", mwi_server, user="alice")

    api.put(URL, EXAMPLE)
    assert next_notify(phone).body == EXAMPLE_BODY
    reply = publish(voicemail, voice(7, 1), event=EVENT, content_type=CONTENT_TYPE)

    assert reply.status == 200
    assert next_notify(phone).body == voice(7, 1)
    assert api.get(URL).json == stored({"messages_waiting": True, "voice": {"new": 7, "old": 1}})


def test_a_voicemail_system_may_publish_any_mailbox_over_sip(mwi_server, ua, api):
    phone = ua("udp", mwi_server, user="alice")
    mwi_watch(phone)
    system = ua("udp", mwi_server, user="vm")  # its login holds mwi.push_mwi

    reply = publish(system, voice(3), presentity=ALICE, event=EVENT, content_type=CONTENT_TYPE)

    assert reply.status == 200, reply.text
    assert next_notify(phone).body == voice(3)
    assert api.get(URL).json["voice"] == {"new": 3, "old": 0, "urgent_new": 0, "urgent_old": 0}


def test_an_ordinary_user_may_not_publish_another_mailbox(mwi_server, ua):
    bob = ua("udp", mwi_server, user="bob")

    reply = publish(bob, voice(3), presentity=ALICE, event=EVENT, content_type=CONTENT_TYPE)

    assert reply.status == 403
    assert publications(mwi_server) == []


def test_only_the_mailbox_owner_may_subscribe(mwi_server, ua):
    bob = ua("udp", mwi_server, user="bob")
    vm = ua("ws", mwi_server, user="vm")

    for watcher in (bob, vm):
        response = subscribe(watcher, ALICE, event=EVENT)
        assert response.status == 403
        assert "only the mailbox owner may subscribe" in response.start
        assert_silent(watcher, 0.3)
    assert mwi_server.rows(
        "SELECT COUNT(*) FROM sipws_activewatcher WHERE event = ?", (EVENT,)
    ) == [(0,)]


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "named"),
    [
        (b'{"messages_waiting": true,', "application/json", 400, "detail"),
        (b"not json", "application/json", 400, "detail"),
        (b"", "application/json", 400, "messages_waiting"),
        (b"[]", "application/json", 400, "non_field_errors"),
        (b'"yes"', "application/json", 400, "non_field_errors"),
        (b"{}", "application/json", 400, "messages_waiting"),
        (b'{"messages_waiting": "yes"}', "application/json", 400, "messages_waiting"),
        (b'{"messages_waiting": 1}', "application/json", 400, "messages_waiting"),
        (b'{"messages_waiting": null}', "application/json", 400, "messages_waiting"),
        (b'{"messages_waiting": true, "colour": "red"}', "application/json", 400, "colour"),
        (b'{"messages_waiting": true, "voice": {"new": -1, "old": 0}}', None, 400, "voice"),
        (b'{"messages_waiting": true, "voice": {"new": 1000000, "old": 0}}', None, 400, "voice"),
        (b'{"messages_waiting": true, "fax": {"new": 1e400, "old": 0}}', None, 400, "fax"),
        (
            b'{"messages_waiting": true, "fax": {"new": 100000000000000000000000000000, "old": 0}}',
            None,
            400,
            "fax",
        ),
        (b'{"messages_waiting": true, "pager": {"new": "2", "old": 0}}', None, 400, "pager"),
        (b'{"messages_waiting": true, "pager": {"new": 2.0, "old": 0}}', None, 400, "pager"),
        (b'{"messages_waiting": true, "pager": {"new": true, "old": 0}}', None, 400, "pager"),
        (b'{"messages_waiting": true, "text": {"new": 1}}', None, 400, "text"),
        (b'{"messages_waiting": true, "text": {"new": 1, "old": 0, "x": 1}}', None, 400, "text"),
        (b'{"messages_waiting": true, "text": [1, 0]}', None, 400, "text"),
        (b'{"messages_waiting": true, "text": 5}', None, 400, "text"),
        (
            b'{"messages_waiting": true, "voice": {"new": 1, "old": 0, "urgent_new": 2}}',
            None,
            400,
            "voice",
        ),
        (
            b'{"messages_waiting": true, "none": {"new": 0, "old": 1, "urgent_old": 2}}',
            None,
            400,
            "none",
        ),
        (b'{"messages_waiting": true, "account": "not a uri"}', None, 400, "account"),
        (b'{"messages_waiting": true, "account": "sip:a@b\\r\\nX: y"}', None, 400, "account"),
        (b'{"messages_waiting": true, "account": ""}', None, 400, "account"),
        (b'{"messages_waiting": true, "account": 97}', None, 400, "account"),
        (b'{"messages_waiting": true}', "text/plain", 415, "detail"),
        (b"messages_waiting=1", "application/x-www-form-urlencoded", 415, "detail"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    mwi_server, ua, api, raw, content_type, status, named
):
    phone = ua("udp", mwi_server, user="alice")
    api.put(URL, EXAMPLE)
    mwi_watch(phone)
    before = publications(mwi_server)

    answer = api.put(URL, raw=raw, headers={"Content-Type": content_type or "application/json"})

    assert answer.status == status, answer.body
    assert named in answer.json, answer.json
    assert publications(mwi_server) == before
    assert api.get(URL).json == stored(EXAMPLE)
    assert_silent(phone, 0.2)


def test_every_mistake_is_named_in_one_answer(mwi_server, api):
    body = {"messages_waiting": "yes", "colour": 1, "voice": {"new": -1, "old": 0, "x": 0}}

    answer = api.put(URL, body)

    assert answer.status == 400
    assert answer.json == {
        "messages_waiting": ["Must be a valid boolean."],
        "colour": ["Unknown field."],
        "voice": {
            "new": ["Ensure this value is greater than or equal to 0."],
            "x": ["Unknown field."],
        },
    }
    assert publications(mwi_server) == []


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("Messages-Waiting: perhaps\r\n", CONTENT_TYPE, 400),
        ("Messages-Waiting: yes\r\nVoice-Message: 1\r\n", CONTENT_TYPE, 400),
        ("Messages-Waiting: yes\nVoice-Message: 1/0\n", CONTENT_TYPE, 400),
        ("Messages-Waiting: yes\r\nVoice-Message: 4294967296/0\r\n", CONTENT_TYPE, 400),
        ("Messages-Waiting: yes\r\n", "text/plain", 415),
    ],
)
def test_a_bad_sip_publish_is_refused_and_changes_nothing(
    mwi_server, ua, api, body, content_type, status
):
    phone = ua("udp", mwi_server, user="alice")
    api.put(URL, EXAMPLE)
    mwi_watch(phone)
    before = publications(mwi_server)
    alice = ua("udp", mwi_server, user="alice")

    reply = publish(alice, body, event=EVENT, content_type=content_type)

    assert reply.status == status, reply.text
    if status == 415:
        assert reply.header("Accept") == CONTENT_TYPE
    assert publications(mwi_server) == before
    assert_silent(phone, 0.2)


def test_the_schema_lists_the_mwi_api(mwi_server):
    answer = Api(mwi_server.http_url).get("/api/schema/", headers={"Accept": "application/json"})

    assert answer.status == 200
    schema = answer.json
    operations = schema["paths"]["/api/mwi/{mailbox}/"]
    assert set(operations) >= {"get", "put", "delete"}
    assert operations["put"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MessageSummary"
    }
    assert set(operations["put"]["responses"]) >= {"200", "400", "401", "403", "404"}
    assert set(operations["delete"]["responses"]) >= {"204", "401", "403", "404"}
    summary = schema["components"]["schemas"]["MessageSummary"]
    assert set(summary["properties"]) == {
        "messages_waiting",
        "account",
        "voice",
        "fax",
        "pager",
        "multimedia",
        "text",
        "none",
    }
    counts = schema["components"]["schemas"]["Counts"]["properties"]
    assert counts["new"]["minimum"] == 0 and counts["new"]["maximum"] == 999_999
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])
    assert not any(path.startswith("/xcap-root") for path in schema["paths"])


def test_the_docs_page_uses_local_static_files_only(mwi_server):
    client = Api(mwi_server.http_url)
    answer = client.get("/api/docs/")

    assert answer.status == 200
    assert answer.header("Content-Type").startswith("text/html")
    page = answer.body.decode()
    assert "/api/schema/" in page
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs", "googleapis"):
        assert cdn not in page
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    local = [url for url in assets if url.startswith("/static/")]
    assert any(url.endswith("swagger-ui-bundle.js") for url in local), assets
    assert all(url.startswith("/") for url in assets), assets
    for url in local:
        assert client.get(url).status == 200, url
