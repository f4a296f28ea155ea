"""Presence authorization end to end: pres-rules written over XCAP decide what watchers see
over SIP (RFC 5025 over RFC 4745, RFC 4827), and a change of the rules re-decides the
watchers at once.

Each test watches a presentity of its own, so that the module's server can be shared.
"""

import pytest
from lxml import etree

from tests.presence import (
    PIDF_NS,
    PIDF_TYPE,
    assert_silent,
    next_notify,
    pidf,
    publications,
    publish,
    state,
    subscribe,
    subscriptions,
    tuples,
    watch,
)
from tests.presrules import (
    CP,
    PR,
    RULES_TYPE,
    WINFO_TYPE,
    aor,
    delete_rules,
    documents,
    put_rules,
    rule,
    rules_path,
    ruleset,
    start_servers,
    stop_servers,
    subscription_states,
    watcher_rows,
    watcherinfo,
    xcap,
)
from tests.xcapapi.conftest import assert_conflict

BOB, CAROL, DAVE = "sip:bob@localhost", "sip:carol@localhost", "sip:dave@example.com"
DM_NS = "urn:ietf:params:xml:ns:pidf:data-model"
RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid"
DEFAULT_POLICIES = {
    # PRESENCE_DEFAULT_POLICY: (bob@localhost, dave@example.com) watching carol@localhost
    "confirm": ("pending", "pending"),
    "allow-same-domain": ("active", "pending"),
    "allow": ("active", "active"),
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """One server per default policy (confirm, the shipped one, also lets publications
    be as short as 1 s) and one with PRESENCE_FORCE_ACTIVE."""
    configs = {policy: {"PRESENCE_DEFAULT_POLICY": policy} for policy in DEFAULT_POLICIES}
    configs["confirm"]["PRESENCE_PUBLISH_MIN_EXPIRES"] = "1"
    configs["force-active"] = {"PRESENCE_DEFAULT_POLICY": "confirm", "PRESENCE_FORCE_ACTIVE": "1"}
    started = start_servers(tmp_path_factory, **configs)
    yield started
    stop_servers(started)


@pytest.fixture(scope="module")
def confirm(servers):
    return servers["confirm"]


def assert_no_body(notify) -> None:
    assert notify.body == "" and notify.header("Content-Type") is None, notify.text


# 1, 2. The classic loop: pending, approved over XCAP, then rejected --------------------


def test_pending_until_an_xcap_allow_rule_then_rejected_by_a_block_rule(confirm, ua):
    alice_aor = aor("alice")
    alice = ua("udp", confirm, user="alice")
    bob = ua("udp", confirm, user="bob")
    assert publish(alice, pidf(alice_aor, note="at my desk")).status == 200

    reply, pending = watch(bob, alice_aor)

    assert reply.status == 200
    assert state(pending)[0] == "pending"
    assert_no_body(pending)
    assert subscription_states(confirm, alice_aor) == {BOB: "pending"}
    _, full = watch(alice, alice_aor, event="presence.winfo")
    assert state(full)[0] == "active" and full.header("Content-Type") == WINFO_TYPE
    version, kind, listed = watcherinfo(full.body)
    assert kind == "full" and list(listed) == [BOB]
    assert (listed[BOB]["status"], listed[BOB]["event"]) == ("pending", "subscribe")

    stored = put_rules(confirm, alice_aor, rule("friends", "allow", one=(BOB,)))

    active = next_notify(bob)
    assert state(active)[0] == "active"
    assert active.header("Content-Type") == PIDF_TYPE
    assert tuples(active.body) == [("t1", "open", "at my desk")]
    told = watcherinfo(next_notify(alice).body)
    assert told[:2] == (version + 1, "partial")
    assert (told[2][BOB]["status"], told[2][BOB]["event"]) == ("active", "approved")
    assert subscription_states(confirm, alice_aor) == {BOB: "active"}
    assert watcher_rows(confirm, alice_aor)[BOB] == {
        "watcher_display": "",
        "status": "active",
        "reason": "approved",
    }
    [document] = documents(confirm, alice_aor)
    assert bytes(document["body"]) == ruleset(rule("friends", "allow", one=(BOB,))).encode()
    assert document["etag"] == stored.etag

    put_rules(confirm, alice_aor, rule("friends", "block", one=(BOB,)))

    rejected = next_notify(bob)
    assert state(rejected) == ("terminated", {"reason": "rejected"})
    assert_no_body(rejected)
    told = watcherinfo(next_notify(alice).body)
    assert told[:2] == (version + 2, "partial")
    assert (told[2][BOB]["status"], told[2][BOB]["event"]) == ("terminated", "rejected")
    assert subscriptions(confirm, BOB, alice_aor) == []
    assert watcher_rows(confirm, alice_aor)[BOB]["status"] == "terminated"
    assert watcher_rows(confirm, alice_aor)[BOB]["reason"] == "rejected"

    # Asking again is answered as before, then ended at once: nothing is kept.
    again = subscribe(bob, alice_aor)
    assert again.status == 200
    final = next_notify(bob)
    assert state(final) == ("terminated", {"reason": "rejected"})
    assert_no_body(final)
    assert subscriptions(confirm, BOB, alice_aor) == []


def test_polite_block_confirm_and_deleting_the_rules(confirm, ua):
    erin_aor = aor("erin")
    erin = ua("udp", confirm, user="erin")
    bob = ua("udp", confirm, user="bob")
    etag = publish(erin, pidf(erin_aor, note="one")).header("SIP-ETag")
    put_rules(confirm, erin_aor, rule("bob", "allow", one=(BOB,)))
    _, first = watch(bob, erin_aor)
    assert state(first)[0] == "active" and tuples(first.body) == [("t1", "open", "one")]

    # A write through a node selector is a change of the rules too (RFC 4825 §8.2.3).
    changed = xcap(confirm, "erin").put(
        f'{rules_path(erin_aor)}/~~/cp:ruleset/cp:rule[@id="bob"]/cp:actions/sub-handling'
        f"?xmlns(cp={CP})",
        f'<sub-handling xmlns="{PR}">polite-block</sub-handling>',
        "application/xcap-el+xml",
    )
    assert changed.status == 200, changed.body

    blocked = next_notify(bob)
    assert state(blocked)[0] == "active"
    assert_no_body(blocked)
    assert publish(erin, pidf(erin_aor, note="two"), etag=etag).status == 200
    after_publish = next_notify(bob)
    assert state(after_publish)[0] == "active"
    assert_no_body(after_publish)
    assert subscription_states(confirm, erin_aor) == {BOB: "active"}

    put_rules(confirm, erin_aor, rule("bob", "confirm", one=(BOB,)))

    pending = next_notify(bob)
    assert state(pending)[0] == "pending"
    assert_no_body(pending)
    assert subscription_states(confirm, erin_aor) == {BOB: "pending"}

    put_rules(confirm, erin_aor, rule("bob", "allow", one=(BOB,)))
    assert tuples(next_notify(bob).body) == [("t1", "open", "two")]

    delete_rules(confirm, erin_aor)

    default = next_notify(bob)
    assert state(default)[0] == "pending"  # PRESENCE_DEFAULT_POLICY=confirm
    assert_no_body(default)
    assert documents(confirm, erin_aor) == []
    assert subscription_states(confirm, erin_aor) == {BOB: "pending"}


def test_a_rules_change_notifies_only_the_watchers_whose_state_changed(confirm, ua):
    kate_aor = aor("kate")
    bob = ua("udp", confirm, user="bob")
    carol = ua("udp", confirm, user="carol")
    for watcher in (bob, carol):
        assert state(watch(watcher, kate_aor)[1])[0] == "pending"

    put_rules(confirm, kate_aor, rule("bob", "allow", one=(BOB,)))

    assert state(next_notify(bob))[0] == "active"
    assert subscription_states(confirm, kate_aor) == {BOB: "active", CAROL: "pending"}
    assert_silent(carol)  # still pending: nothing to tell (issue 4, item 9)


def test_rules_under_the_oma_auid_decide_too(confirm, ua):
    leo_aor = aor("leo")
    leo = ua("udp", confirm, user="leo")
    assert publish(leo, pidf(leo_aor, note="oma")).status == 200
    oma = ruleset(rule("bob", "allow", one=(BOB,)))
    put = xcap(confirm, "leo").put(
        f"org.openmobilealliance.pres-rules/users/{leo_aor}/index", oma, RULES_TYPE
    )
    assert put.status == 201, put.body
    bob = ua("udp", confirm, user="bob")
    carol = ua("udp", confirm, user="carol")

    assert tuples(watch(bob, leo_aor)[1].body) == [("t1", "open", "oma")]
    assert state(watch(carol, leo_aor)[1])[0] == "pending"


# 3. Default policies, force-active, watching oneself ------------------------------------


@pytest.mark.parametrize("policy", list(DEFAULT_POLICIES))
def test_default_policy_decides_without_rules(servers, ua, policy):
    server = servers[policy]
    carol = ua("udp", server, user="carol")
    assert publish(carol, pidf(CAROL, note="here")).status == 200
    bob = ua("udp", server, user="bob")
    dave = ua("udp", server, user="dave", domain="example.com")

    seen = {who: watch(client, CAROL)[1] for who, client in (("bob", bob), ("dave", dave))}

    assert (state(seen["bob"])[0], state(seen["dave"])[0]) == DEFAULT_POLICIES[policy]
    for notify in seen.values():
        if state(notify)[0] == "active":
            assert tuples(notify.body) == [("t1", "open", "here")]
        else:
            assert_no_body(notify)
    assert subscription_states(server, CAROL) == dict(
        zip((BOB, DAVE), DEFAULT_POLICIES[policy], strict=True)
    )


def test_force_active_ignores_a_block_rule(servers, ua):
    force_active = servers["force-active"]
    alice_aor = aor("alice")
    alice = ua("udp", force_active, user="alice")
    assert publish(alice, pidf(alice_aor, note="for all")).status == 200
    put_rules(force_active, alice_aor, rule("nobody", "block", many=True))
    bob = ua("udp", force_active, user="bob")
    dave = ua("udp", force_active, user="dave", domain="example.com")

    for watcher in (bob, dave):
        _, notify = watch(watcher, alice_aor)
        assert state(notify)[0] == "active"
        assert tuples(notify.body) == [("t1", "open", "for all")]
    assert subscription_states(force_active, alice_aor) == {BOB: "active", DAVE: "active"}


def test_a_user_watching_itself_is_active_whatever_the_rules(confirm, ua):
    judy_aor = aor("judy")
    judy = ua("udp", confirm, user="judy")
    assert publish(judy, pidf(judy_aor, note="me")).status == 200
    put_rules(confirm, judy_aor, rule("nobody", "block", many=True))

    _, notify = watch(judy, judy_aor)

    assert state(notify)[0] == "active"
    assert tuples(notify.body) == [("t1", "open", "me")]
    assert subscription_states(confirm, judy_aor) == {"sip:judy@localhost": "active"}


# 4, 5. Transformations and the combination of rules, as watchers see them ------------------

FRANK_PRESENCE = f"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="{PIDF_NS}" xmlns:dm="{DM_NS}" xmlns:rpid="{RPID_NS}" entity="sip:frank@localhost">
<tuple id="phone"><status><basic>open</basic></status><note>on the phone</note></tuple>
<tuple id="pc"><status><basic>closed</basic></status><note>pc is off</note></tuple>
<note>back at five</note>
<dm:person id="p1"><rpid:activities><rpid:busy/></rpid:activities></dm:person>
</presence>"""


def shown(body: str) -> dict:
    root = etree.fromstring(body.encode())
    return {
        "tuples": [t.get("id") for t in root.iterchildren(f"{{{PIDF_NS}}}tuple")],
        "tuple notes": [n.text for n in root.iterfind(f"{{{PIDF_NS}}}tuple/{{{PIDF_NS}}}note")],
        "notes": [n.text for n in root.iterchildren(f"{{{PIDF_NS}}}note")],
        "persons": [p.get("id") for p in root.iterchildren(f"{{{DM_NS}}}person")],
        "activities": [etree.QName(a).localname for a in root.iterfind(f".//{{{RPID_NS}}}busy")],
    }


PHONE_AND_NOTES = (
    "<pr:provide-services><pr:occurrence-id>phone</pr:occurrence-id></pr:provide-services>"
    "<pr:provide-note>true</pr:provide-note>"
)
ALL_SERVICES = "<pr:provide-services><pr:all-services/></pr:provide-services>"
EVERYTHING = (
    ALL_SERVICES + "<pr:provide-persons><pr:all-persons/></pr:provide-persons>"
    "<pr:provide-all-attributes/>"
)


def frank_rules(for_bob: str) -> tuple[str, str]:
    """Bob sees what `for_bob` provides, carol everything."""
    return (
        rule("bob", one=(BOB,), transformations=for_bob),
        rule("carol", one=(CAROL,), transformations=EVERYTHING),
    )


def test_transformations_cut_each_watchers_view_in_one_fan_out(confirm, ua):
    frank_aor = aor("frank")
    put_rules(confirm, frank_aor, *frank_rules(PHONE_AND_NOTES))
    bob = ua("udp", confirm, user="bob")
    carol = ua("udp", confirm, user="carol")
    for watcher in (bob, carol):
        assert state(watch(watcher, frank_aor)[1])[0] == "active"
    frank = ua("udp", confirm, user="frank")

    assert publish(frank, FRANK_PRESENCE).status == 200

    to_bob, to_carol = next_notify(bob), next_notify(carol)
    assert shown(to_bob.body) == {
        "tuples": ["phone"],
        "tuple notes": ["on the phone"],
        "notes": ["back at five"],
        "persons": [],
        "activities": [],
    }
    assert shown(to_carol.body) == {
        "tuples": ["phone", "pc"],
        "tuple notes": ["on the phone", "pc is off"],
        "notes": ["back at five"],
        "persons": ["p1"],
        "activities": ["busy"],
    }

    # Widening bob's rule re-cuts his view at once.
    put_rules(confirm, frank_aor, *frank_rules(ALL_SERVICES))
    assert shown(next_notify(bob).body)["tuples"] == ["phone", "pc"]


def test_matching_rules_combine_to_the_most_permissive(confirm, ua):
    grace_aor = aor("grace")
    grace = ua("udp", confirm, user="grace")
    assert publish(grace, pidf(grace_aor, note="hi")).status == 200
    # RFC 4745 §10: the maximum of the matching rules, whatever their order.
    put_rules(
        confirm,
        grace_aor,
        rule("everyone", "block", many=True),
        rule("friend", "allow", one=(BOB,)),
    )
    bob = ua("udp", confirm, user="bob")
    carol = ua("udp", confirm, user="carol")

    _, to_bob = watch(bob, grace_aor)
    _, to_carol = watch(carol, grace_aor)

    assert state(to_bob)[0] == "active"
    assert tuples(to_bob.body) == [("t1", "open", "hi")]
    assert state(to_carol) == ("terminated", {"reason": "rejected"})
    assert_no_body(to_carol)
    assert subscription_states(confirm, grace_aor) == {BOB: "active"}
    assert watcher_rows(confirm, grace_aor)[CAROL]["status"] == "terminated"


# 6. pidf-manipulation: presence set over XCAP ---------------------------------------------

HEIDI_XCAP = f"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="{PIDF_NS}" entity="sip:heidi@localhost">
<tuple id="xcap"><status><basic>open</basic></status><note>set over XCAP</note></tuple>
</presence>"""


def test_pidf_manipulation_is_a_presence_source_that_never_expires(confirm, ua):
    heidi_aor = aor("heidi")
    put_rules(confirm, heidi_aor, rule("everyone", "allow", many=True))
    bob = ua("udp", confirm, user="bob")
    watch(bob, heidi_aor)

    put = xcap(confirm, "heidi").put(
        f"pidf-manipulation/users/{heidi_aor}/index", HEIDI_XCAP, PIDF_TYPE
    )

    assert put.status == 201, put.body
    assert tuples(next_notify(bob).body) == [("xcap", "open", "set over XCAP")]
    heidi = ua("udp", confirm, user="heidi")
    assert publish(heidi, pidf(heidi_aor, "sip", note="published"), expires=1).status == 200
    merged = next_notify(bob)
    assert state(merged)[0] == "active"
    assert sorted(tuples(merged.body)) == [
        ("sip", "open", "published"),
        ("xcap", "open", "set over XCAP"),
    ]
    # The publication expires; the document stays.
    expired = next_notify(bob, timeout=5)
    assert tuples(expired.body) == [("xcap", "open", "set over XCAP")]
    assert publications(confirm, heidi_aor) == []
    assert len(documents(confirm, heidi_aor, "pidf-manipulation")) == 1
    carol = ua("udp", confirm, user="carol")
    assert tuples(watch(carol, heidi_aor)[1].body) == [("xcap", "open", "set over XCAP")]


# 8. Bad rules change nothing -----------------------------------------------------------------

BOMB = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
    '<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy">&lol2;</cp:ruleset>'
)
SUB_HANDLING = f'/~~/cp:ruleset/cp:rule[@id="bob"]/cp:actions/sub-handling?xmlns(cp={CP})'


def document(body: str, condition: str) -> tuple[str, str, str, str]:
    """A whole-document PUT: (node selector, content type, body, xcap-error condition)."""
    return "", RULES_TYPE, body, condition


BAD_RULES = {
    "not well-formed": document(ruleset(rule("bob", "block", one=(BOB,)))[:-4], "not-well-formed"),
    "unknown sub-handling": document(
        ruleset(rule("bob", "maybe", one=(BOB,))), "schema-validation-error"
    ),
    "rule without id": document(
        ruleset(rule("bob", "block", one=(BOB,))).replace(' id="bob"', ""),
        "schema-validation-error",
    ),
    "entity expansion": document(BOMB, "constraint-failure"),
    "element failing the schema": (
        SUB_HANDLING,
        "application/xcap-el+xml",
        f'<sub-handling xmlns="{PR}">maybe</sub-handling>',
        "schema-validation-error",
    ),
}


@pytest.mark.parametrize("case", list(BAD_RULES))
def test_refused_rules_leave_rules_and_watchers_unchanged(confirm, ua, case):
    ivan_aor = aor("ivan")
    put_rules(confirm, ivan_aor, rule("bob", "allow", one=(BOB,)))
    bob = ua("udp", confirm, user="bob")
    assert state(watch(bob, ivan_aor)[1])[0] == "active"
    before = (
        documents(confirm, ivan_aor),
        subscriptions(confirm, None, ivan_aor),
        watcher_rows(confirm, ivan_aor),
    )
    selector, content_type, body, condition = BAD_RULES[case]

    reply = xcap(confirm, "ivan").put(rules_path(ivan_aor) + selector, body, content_type)

    assert_conflict(reply, condition)
    assert_silent(bob, 0.3)
    assert (
        documents(confirm, ivan_aor),
        subscriptions(confirm, None, ivan_aor),
        watcher_rows(confirm, ivan_aor),
    ) == before
    assert subscription_states(confirm, ivan_aor) == {BOB: "active"}
