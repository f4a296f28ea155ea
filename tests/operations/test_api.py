"""The operations API under /api/admin/ over real HTTP, each action observed on real SIP
watchers: terminate, refresh, re-evaluate, cleanup; the lists and show with filters; who
may call it (401 anonymous, 403 non-staff) and bad input (400, 404) changing nothing."""

import time

import pytest

from tests.operations.helpers import Api, drop_rules, subscription_of, write_rules
from tests.presence import (
    assert_silent,
    cseq,
    next_notify,
    pidf,
    publications,
    publish,
    snapshot,
    state,
    subscriptions,
    tuples,
    watch,
)
from tests.presrules import rule, watcherinfo

ALICE, BOB, CAROL = "sip:alice@localhost", "sip:bob@localhost", "sip:carol@localhost"
ENDPOINTS = [
    ("GET", "/api/admin/presentities/"),
    ("GET", f"/api/admin/presentities/{ALICE}/"),
    ("POST", f"/api/admin/presentities/{ALICE}/refresh/"),
    ("POST", f"/api/admin/presentities/{ALICE}/reevaluate/"),
    ("GET", "/api/admin/subscriptions/"),
    ("GET", "/api/admin/subscriptions/1/"),
    ("POST", "/api/admin/subscriptions/1/terminate/"),
    ("GET", "/api/admin/watchers/"),
    ("POST", "/api/admin/cleanup/"),
]


# Who may call it


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_anonymous_gets_401_with_a_token_challenge(server, method, path):
    status, content, headers = Api(server).call(method, path)

    assert status == 401, content
    assert headers["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_a_wrong_token_gets_401(server, method, path):
    status, content, _ = Api(server, "0" * 40).call(method, path)

    assert status == 401
    assert content == {"detail": "Invalid token."}


def test_a_non_staff_user_gets_403_and_changes_nothing(server, ua, tokens):
    bob = ua("udp", server, user="bob")
    watch(bob, ALICE)
    row = subscription_of(server, bob)
    before = snapshot(server)
    plain = Api(server, tokens["plain"])

    for method, path in ENDPOINTS:
        status, content, _ = plain.call(method, path.replace("/1/", f"/{row['id']}/"))
        assert status == 403, (method, path, content)
        assert content == {"detail": "You do not have permission to perform this action."}

    assert snapshot(server) == before
    assert_silent(bob)


# Lists and show


def test_list_presentities_with_filters(server, ua, api):
    phone, laptop = ua("udp", server, user="alice"), ua("tcp", server, user="alice")
    carol = ua("ws", server, user="carol")
    publish(phone, pidf(ALICE))
    publish(laptop, pidf(ALICE, "t2"))
    publish(carol, pidf(CAROL))

    status, page = api.get("/api/admin/presentities/")
    assert status == 200
    assert page["count"] == 2
    listed = {(row["uri"], row["event"]): row for row in page["results"]}
    assert listed[(ALICE, "presence")]["publications"] == 2
    assert listed[(CAROL, "presence")]["publications"] == 1

    assert [r["uri"] for r in api.get("/api/admin/presentities/", uri=ALICE)[1]["results"]] == [
        ALICE
    ]
    short = api.get("/api/admin/presentities/", uri="carol@localhost")[1]
    assert [r["uri"] for r in short["results"]] == [CAROL]
    pattern = api.get("/api/admin/presentities/", uri="*@localhost")[1]
    assert pattern["count"] == 2
    assert api.get("/api/admin/presentities/", event="dialog")[1]["count"] == 0
    first = api.get("/api/admin/presentities/", limit=1)[1]
    assert (first["count"], len(first["results"])) == (2, 1)


def test_show_a_presentity(server, ua, api):
    alice = ua("udp", server, user="alice")
    etag = publish(alice, pidf(ALICE, note="at lunch")).header("SIP-ETag")

    status, shown = api.get(f"/api/admin/presentities/{ALICE}/")

    assert status == 200
    assert (shown["uri"], shown["event"], shown["subscriptions"]) == (ALICE, "presence", 0)
    assert shown["content_type"] == "application/pidf+xml"
    assert [p["etag"] for p in shown["publications"]] == [etag]
    assert shown["publications"][0]["publisher"] == ALICE
    assert tuples(shown["state"]) == [("t1", "open", "at lunch")]
    # Without "sip:" and percent-encoded, the same presentity.
    assert api.get("/api/admin/presentities/alice@localhost/")[1]["uri"] == ALICE
    assert api.get("/api/admin/presentities/sip%3Aalice%40localhost/")[1]["uri"] == ALICE


def test_show_a_presentity_with_nothing_published(server, api):
    status, shown = api.get(f"/api/admin/presentities/{BOB}/")

    assert status == 200
    assert (shown["publications"], shown["state"]) == ([], None)


def test_show_an_unknown_presentity_or_event(server, api):
    assert api.get("/api/admin/presentities/sip:nobody@localhost/") == (
        404,
        {"detail": "no presentity sip:nobody@localhost"},
    )
    status, content = api.get(f"/api/admin/presentities/{ALICE}/", event="no-such-event")
    assert status == 400
    assert content["detail"].startswith("unknown event package 'no-such-event'")
    status, content = api.get("/api/admin/presentities/not-an-address/")
    assert (status, content) == (400, {"detail": "not a SIP address: 'not-an-address'"})


def test_list_subscriptions_and_watchers_with_filters(server, ua, api):
    bob, carol = ua("udp", server, user="bob"), ua("ws", server, user="carol")
    dave = ua("udp", server, user="dave", domain="example.com")
    watch(bob, ALICE)
    watch(carol, ALICE)
    watch(dave, BOB)

    def listed(path, **query):
        status, page = api.get(path, **query)
        assert status == 200, page
        return sorted((row["watcher"], row["presentity"]) for row in page["results"])

    subs = "/api/admin/subscriptions/"
    assert listed(subs) == [(BOB, ALICE), (CAROL, ALICE), ("sip:dave@example.com", BOB)]
    assert listed(subs, presentity=ALICE) == [(BOB, ALICE), (CAROL, ALICE)]
    assert listed(subs, watcher="*@example.com") == [("sip:dave@example.com", BOB)]
    assert listed(subs, presentity="alice@localhost", watcher=CAROL) == [(CAROL, ALICE)]
    assert listed(subs, status="active", event="presence") == listed(subs)
    assert listed(subs, status="pending") == []
    row = api.get(subs, watcher=CAROL)[1]["results"][0]
    assert (row["transport"], row["status"], row["call_id"]) == ("ws", "active", carol.call_id)
    assert api.get(f"{subs}{row['id']}/") == (200, row)

    assert listed("/api/admin/watchers/", presentity=ALICE) == [(BOB, ALICE), (CAROL, ALICE)]
    assert listed("/api/admin/watchers/", watcher="sip:dave@*") == [("sip:dave@example.com", BOB)]


def test_bad_filters_get_400(server, api):
    status, content = api.get("/api/admin/subscriptions/", status="sleeping")
    assert status == 400
    assert content == {"status": ['"sleeping" is not a valid choice.']}
    status, content = api.get("/api/admin/watchers/", presentity="bob")
    assert (status, content) == (400, {"detail": "not a SIP address: 'bob'"})
    assert api.get("/api/admin/subscriptions/999999/")[0] == 404


# Actions, observed on the watchers


@pytest.mark.parametrize("transport", ["udp", "ws"])
def test_terminate_tells_the_watcher_deactivated(server, ua, api, transport):
    alice, bob = ua("udp", server, user="alice"), ua(transport, server, user="bob")
    watch(alice, ALICE, event="presence.winfo")
    _, first = watch(bob, ALICE)
    next_notify(alice)  # winfo: bob subscribed
    row = subscription_of(server, bob)

    status, result = api.post(f"/api/admin/subscriptions/{row['id']}/terminate/")

    assert (status, result) == (200, {"terminated": row["id"], "notified": 2})
    told = next_notify(bob)
    assert told.header("Subscription-State") == "terminated;reason=deactivated"
    assert told.body == "" and told.header("Content-Type") is None
    assert cseq(told) == cseq(first) + 1
    assert server.rows("SELECT id FROM sipws_activewatcher WHERE id = ?", (row["id"],)) == []
    _, kind, watchers = watcherinfo(next_notify(alice).body)
    assert kind == "partial"
    assert watchers[BOB]["status"] == "terminated"
    assert watchers[BOB]["event"] == "deactivated"
    # Once gone, it is gone.
    assert api.post(f"/api/admin/subscriptions/{row['id']}/terminate/") == (
        404,
        {"detail": f"no subscription {row['id']}"},
    )


def test_refresh_sends_every_watcher_the_current_state(server, ua, api):
    alice = ua("udp", server, user="alice")
    bob, carol = ua("udp", server, user="bob"), ua("ws", server, user="carol")
    publish(alice, pidf(ALICE, note="in a meeting"))
    _, bob_first = watch(bob, ALICE)
    _, carol_first = watch(carol, ALICE)

    status, result = api.post(f"/api/admin/presentities/{ALICE}/refresh/", {"event": "presence"})

    assert (status, result) == (200, {"presentity": ALICE, "event": "presence", "notified": 2})
    for client, first in ((bob, bob_first), (carol, carol_first)):
        again = next_notify(client)
        assert state(again)[0] == "active"
        assert tuples(again.body) == tuples(first.body) == [("t1", "open", "in a meeting")]
        assert cseq(again) == cseq(first) + 1


def test_refresh_with_an_unknown_event_sends_nothing(server, ua, api):
    bob = ua("udp", server, user="bob")
    watch(bob, ALICE)

    status, content = api.post(f"/api/admin/presentities/{ALICE}/refresh/", {"event": "nope"})

    assert status == 400
    assert content["detail"].startswith("unknown event package 'nope'")
    assert api.post("/api/admin/presentities/sip:nobody@localhost/refresh/")[0] == 404
    assert_silent(bob)


def test_reevaluate_applies_rules_written_behind_the_servers_back(server, ua, api):
    carol, bob = ua("udp", server, user="carol"), ua("udp", server, user="bob")
    publish(carol, pidf(CAROL, note="busy"))
    watch(bob, CAROL)  # active: this server allows by default
    path = f"/api/admin/presentities/{CAROL}/reevaluate/"
    try:
        write_rules(server, CAROL, rule("wait", "confirm", one=(BOB,)))
        assert_silent(bob)  # nothing noticed the new rules

        status, result = api.post(path)

        assert status == 200
        assert result == {
            "presentity": CAROL,
            "event": "presence",
            "notified": 1,
            "changes": [{"watcher": BOB, "before": "active", "after": "pending"}],
        }
        pending = next_notify(bob)
        assert state(pending)[0] == "pending" and pending.body == ""

        write_rules(server, CAROL, rule("ok", "allow", one=(BOB,)))
        status, result = api.post(path, {"event": "presence"})

        assert result["changes"] == [{"watcher": BOB, "before": "pending", "after": "active"}]
        allowed = next_notify(bob)
        assert state(allowed)[0] == "active"
        assert tuples(allowed.body) == [("t1", "open", "busy")]

        write_rules(server, CAROL, rule("no", "block", one=(BOB,)))
        status, result = api.post(path)

        assert result["changes"] == [{"watcher": BOB, "before": "active", "after": "terminated"}]
        assert next_notify(bob).header("Subscription-State") == "terminated;reason=rejected"
    finally:
        drop_rules(server, CAROL)


def test_cleanup_removes_what_expired(server, ua, api):
    alice, bob, carol = (ua("udp", server, user=name) for name in ("alice", "bob", "carol"))
    _, carol_first = watch(carol, ALICE)  # stays
    publish(alice, pidf(ALICE), expires=1)
    next_notify(carol)
    _, bob_first = watch(bob, ALICE, expires=1)
    assert bob.send_authenticated("REGISTER", expires=1).status == 200
    time.sleep(1.5)
    # The expiry timer is off on this server: only the cleanup removes them.
    assert len(publications(server, ALICE)) == 1
    assert_silent(bob, 0.1)

    status, result = api.post("/api/admin/cleanup/")

    assert status == 200
    assert result == {"publications": 1, "subscriptions": 1, "registrations": 1, "notified": 2}
    ended = next_notify(bob)
    assert ended.header("Subscription-State") == "terminated;reason=timeout"
    closed = next_notify(carol)
    assert state(closed)[0] == "active" and closed.body == ""  # nothing published any more
    assert publications(server, ALICE) == []
    assert server.rows("SELECT id FROM sipws_registration WHERE aor = ?", (BOB,)) == []
    assert [row["watcher_uri"] for row in subscriptions(server, presentity=ALICE)] == [CAROL]
    assert api.post("/api/admin/cleanup/") == (
        200,
        {"publications": 0, "subscriptions": 0, "registrations": 0, "notified": 0},
    )


def test_the_schema_describes_the_operations(server):
    status, schema, _ = Api(server).call("GET", "/api/schema/", format="json")

    assert status == 200
    paths = schema["paths"]
    assert "/api/admin/subscriptions/{id}/terminate/" in paths
    assert "/api/admin/presentities/{uri}/refresh/" in paths
    assert "/api/admin/cleanup/" in paths
    listing = paths["/api/admin/subscriptions/"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"presentity", "watcher", "status"}
