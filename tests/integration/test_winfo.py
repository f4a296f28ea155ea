"""presence.winfo end to end (RFC 3857, format RFC 3858): a presentity learns who watches
it, who waits for its decision and what became of each, over real SIP sockets.

Each test watches the watchers of a presentity of its own, so that the module's server
can be shared. Subscriptions may be as short as 1 s, for the expiry cases.
"""

import pytest

from tests.presence import (
    assert_silent,
    next_notify,
    state,
    subscribe,
    subscriptions,
    tag,
    unsubscribe,
    watch,
)
from tests.presrules import (
    WINFO_TYPE,
    aor,
    put_rules,
    rule,
    start_servers,
    stop_servers,
    watcher_rows,
    watcherinfo,
)

WINFO = "presence.winfo"
BOB, CAROL, DAVE = "sip:bob@localhost", "sip:carol@localhost", "sip:dave@example.com"
ERIN, FRANK = "sip:erin@localhost", "sip:frank@localhost"
BOB_NAME = 'Bob "the Builder" & Zoë <B>'  # quoted-pair, XML specials, UTF-8


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    started = start_servers(
        tmp_path_factory,
        winfo={"PRESENCE_DEFAULT_POLICY": "confirm", "PRESENCE_SUBSCRIBE_MIN_EXPIRES": "1"},
    )
    yield started["winfo"]
    stop_servers(started)


def with_display_name(client, name: str):
    """Make every request of `client` carry `name` in its From header (a quoted-string)."""
    build = client.request
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')

    def request(method, **kwargs):
        return build(method, **kwargs).replace("From: <", f'From: "{quoted}" <', 1)

    client.request = request
    return client


def test_only_the_presentity_may_subscribe_to_its_watchers(server, ua):
    alice = aor("alice")
    for user, domain in (("bob", "localhost"), ("dave", "example.com")):
        other = ua("udp", server, user=user, domain=domain)

        reply = subscribe(other, alice, event=WINFO)

        assert reply.status == 403, reply.text
        assert_silent(other, 0.2)
    assert subscriptions(server, presentity=alice) == []
    assert watcher_rows(server, alice, WINFO) == {}

    owner = ua("udp", server, user="alice")
    reply, full = watch(owner, alice, event=WINFO)
    assert reply.status == 200
    assert state(full)[0] == "active" and full.header("Content-Type") == WINFO_TYPE
    assert watcherinfo(full.body) == (0, "full", {})


def test_full_state_lists_active_pending_waiting_and_rejected_watchers(server, ua):
    heidi = aor("heidi")
    put_rules(server, heidi, rule("bob", "allow", one=(BOB,)), rule("frank", "block", one=(FRANK,)))
    erin = ua("udp", server, user="erin")
    _, first = watch(erin, heidi, expires=1)  # pending, then expires: waiting
    assert state(first)[0] == "pending"
    bob = with_display_name(ua("udp", server, user="bob"), BOB_NAME)
    assert state(watch(bob, heidi)[1])[0] == "active"
    carol = ua("udp", server, user="carol")
    assert state(watch(carol, heidi)[1])[0] == "pending"
    dave = ua("udp", server, user="dave", domain="example.com")
    dave_reply, _ = watch(dave, heidi)
    assert state(unsubscribe(dave, dave_reply, heidi)[1]) == ("terminated", {"reason": "timeout"})
    frank = ua("udp", server, user="frank")
    assert state(watch(frank, heidi)[1]) == ("terminated", {"reason": "rejected"})
    assert state(next_notify(erin, timeout=5)) == ("terminated", {"reason": "timeout"})
    owner = ua("udp", server, user="heidi")

    _, full = watch(owner, heidi, event=WINFO)

    version, kind, listed = watcherinfo(full.body)
    assert (version, kind) == (0, "full")
    assert {uri: (w["status"], w["event"]) for uri, w in listed.items()} == {
        BOB: ("active", "subscribe"),
        CAROL: ("pending", "subscribe"),
        DAVE: ("waiting", "timeout"),
        ERIN: ("waiting", "timeout"),
        FRANK: ("terminated", "rejected"),
    }
    assert listed[BOB]["display-name"] == BOB_NAME
    assert all("display-name" not in listed[uri] for uri in (CAROL, DAVE, ERIN, FRANK))
    for live in (BOB, CAROL):
        assert 500 <= int(listed[live]["expiration"]) <= 600, listed[live]
        assert 0 <= int(listed[live]["duration-subscribed"]) <= 100, listed[live]
    for gone in (DAVE, ERIN, FRANK):
        assert "expiration" not in listed[gone] and "duration-subscribed" not in listed[gone]
    assert len({w["id"] for w in listed.values()}) == 5
    # The Watcher table keeps every attempt and what was decided.
    assert watcher_rows(server, heidi) == {
        BOB: {"watcher_display": BOB_NAME, "status": "active", "reason": "subscribe"},
        CAROL: {"watcher_display": "", "status": "pending", "reason": "subscribe"},
        DAVE: {"watcher_display": "", "status": "pending", "reason": "timeout"},
        ERIN: {"watcher_display": "", "status": "pending", "reason": "timeout"},
        FRANK: {"watcher_display": "", "status": "terminated", "reason": "rejected"},
    }
    assert {row["watcher_uri"]: row["status"] for row in subscriptions(server, None, heidi)} == {
        BOB: "active",
        CAROL: "pending",
        "sip:heidi@localhost": "active",  # the winfo subscription itself
    }


def test_partial_notifies_follow_each_change_with_a_version_per_subscription(server, ua):
    grace = aor("grace")
    owner = ua("udp", server, user="grace")
    phone = ua("tcp", server, user="grace")  # a second device of hers, with its own counter
    bob = ua("udp", server, user="bob")
    carol = ua("udp", server, user="carol")
    versions = {owner: [], phone: []}

    def told(*devices, full=False) -> dict[str, tuple[str, str]]:
        """What the NOTIFY each device got says: {watcher: (status, event)}; the first
        NOTIFY of a subscription, or `full`, carries the full state."""
        found = []
        for device in devices:
            version, kind, listed = watcherinfo(next_notify(device).body)
            assert kind == ("partial" if versions[device] and not full else "full")
            versions[device].append(version)
            found.append({uri: (w["status"], w["event"]) for uri, w in listed.items()})
        assert all(changes == found[0] for changes in found), found
        return found[0]

    first = subscribe(owner, grace, event=WINFO)
    assert first.status == 200
    assert told(owner) == {}
    watch(bob, grace)
    assert told(owner) == {BOB: ("pending", "subscribe")}
    assert subscribe(phone, grace, event=WINFO).status == 200
    assert told(phone) == {BOB: ("pending", "subscribe")}

    put_rules(server, grace, rule("bob", "allow", one=(BOB,)))
    assert state(next_notify(bob))[0] == "active"
    assert told(owner, phone) == {BOB: ("active", "approved")}

    put_rules(server, grace, rule("bob", "block", one=(BOB,)))
    assert state(next_notify(bob)) == ("terminated", {"reason": "rejected"})
    assert told(owner, phone) == {BOB: ("terminated", "rejected")}

    watch(carol, grace, expires=1)
    assert told(owner, phone) == {CAROL: ("pending", "subscribe")}
    assert state(next_notify(carol, timeout=5)) == ("terminated", {"reason": "timeout"})
    assert told(owner, phone) == {CAROL: ("waiting", "timeout")}

    # A refresh is answered with the full state, at the next version (RFC 3857 §3.9).
    assert subscribe(owner, grace, event=WINFO, to_tag=tag(first.header("To"))).status == 200
    assert told(owner, full=True) == {
        BOB: ("terminated", "rejected"),
        CAROL: ("waiting", "timeout"),
    }
    assert versions == {owner: [0, 1, 2, 3, 4, 5, 6], phone: [0, 1, 2, 3, 4]}


def test_a_waiting_watcher_approved_is_told_and_active_when_it_returns(server, ua):
    ivan = aor("ivan")
    owner = ua("udp", server, user="ivan")
    _, full = watch(owner, ivan, event=WINFO)
    assert watcherinfo(full.body)[2] == {}
    dave = ua("udp", server, user="dave", domain="example.com")
    reply, _ = watch(dave, ivan)
    assert watcherinfo(next_notify(owner).body)[2][DAVE]["status"] == "pending"
    unsubscribe(dave, reply, ivan)
    assert watcherinfo(next_notify(owner).body)[2][DAVE]["status"] == "waiting"

    put_rules(server, ivan, rule("dave", "allow", one=(DAVE,)))

    version, kind, listed = watcherinfo(next_notify(owner, timeout=2).body)
    assert (version, kind) == (3, "partial")
    assert listed[DAVE]["status"] != "waiting" and listed[DAVE]["event"] == "approved", listed
    _, again = watch(dave, ivan)
    assert state(again)[0] == "active"
    version, kind, listed = watcherinfo(next_notify(owner).body)
    assert (listed[DAVE]["status"], listed[DAVE]["event"]) == ("active", "subscribe")


def test_watchers_before_the_first_winfo_subscription_do_not_hide_later_ones(server, ua):
    # The server keeps, per presentity, whether it has a winfo subscription: the "no"
    # learnt from Bob's comings and goings must not outlive Judy's own subscription.
    judy = aor("judy")
    bob = ua("udp", server, user="bob")
    reply, _ = watch(bob, judy)
    unsubscribe(bob, reply, judy)
    owner = ua("udp", server, user="judy")
    _, full = watch(owner, judy, event=WINFO)
    assert watcherinfo(full.body)[2][BOB]["status"] == "waiting"

    carol = ua("udp", server, user="carol")
    watch(carol, judy)

    version, kind, listed = watcherinfo(next_notify(owner).body)
    assert (version, kind) == (1, "partial")
    assert (listed[CAROL]["status"], listed[CAROL]["event"]) == ("pending", "subscribe")
