"""The web client's document modules (frontend/static/frontend/js/) in Chromium: what the
page reads from PIDF, watcherinfo and message-summary bodies other clients and the server
write, and how it edits the XCAP documents. The modules are imported into a page of the
real server, as the app page imports them; what they write is checked against the
server's own schemas."""

from __future__ import annotations

import pytest
from lxml import etree

from xcapapi.usages.base import load_schema
from xcapapi.usages.pres_rules import PresRules
from xcapapi.usages.resource_lists import ResourceLists

PIDF_NS = "urn:ietf:params:xml:ns:pidf"
DM_NS = "urn:ietf:params:xml:ns:pidf:data-model"
RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid"
CP_NS = "urn:ietf:params:xml:ns:common-policy"
PR_NS = "urn:ietf:params:xml:ns:pres-rules"
RL_NS = "urn:ietf:params:xml:ns:resource-lists"
NS = {"cp": CP_NS, "pr": PR_NS, "rl": RL_NS, "dm": DM_NS, "rpid": RPID_NS, "pidf": PIDF_NS}


@pytest.fixture(scope="module")
def page(browser, server):
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.http_url + "/login/")
    yield page
    context.close()
    assert errors == []


def call(page, module: str, function: str, *args):
    """module.function(*args) inside the page, for JSON-able arguments and results."""
    return page.evaluate(
        """async ([module, fn, args]) => {
            const m = await import(`/static/frontend/js/${module}`);
            return m[fn](...args);
        }""",
        [module, function, list(args)],
    )


def edit(page, function: str, xml: str, *args) -> str:
    """Parse xml in the page, apply xcap.js's function(dom, *args), return the result."""
    return page.evaluate(
        """async ([fn, xml, args]) => {
            const m = await import("/static/frontend/js/xcap.js");
            const dom = new DOMParser().parseFromString(xml, "application/xml");
            const changed = m[fn](dom, ...args);
            return [changed, new XMLSerializer().serializeToString(dom)];
        }""",
        [function, xml, list(args)],
    )


def presence(*children: str, entity: str = "sip:bob@localhost") -> str:
    return (
        f'<presence xmlns="{PIDF_NS}" xmlns:dm="{DM_NS}" xmlns:rpid="{RPID_NS}" '
        f'entity="{entity}">{"".join(children)}</presence>'
    )


def tuple_(tuple_id: str, basic: str, note: str = "") -> str:
    note_xml = f"<note>{note}</note>" if note else ""
    return f'<tuple id="{tuple_id}"><status><basic>{basic}</basic></status>{note_xml}</tuple>'


def person(activity: str = "", note: str = "") -> str:
    activities = f"<rpid:activities><rpid:{activity}/></rpid:activities>" if activity else ""
    note_xml = f"<dm:note>{note}</dm:note>" if note else ""
    return f'<dm:person id="p1">{activities}{note_xml}</dm:person>'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", {"status": "offline", "activity": "", "note": ""}),  # nothing published
        ("<not-xml", {"status": "offline", "activity": "", "note": ""}),
        # A desk phone: one tuple, a note, no RPID.
        (
            presence(tuple_("phone", "open", "At my desk")),
            {"status": "available", "activity": "", "note": "At my desk"},
        ),
        # Two devices composed by the server: one open tuple makes the person reachable.
        (
            presence(tuple_("a", "closed"), tuple_("b", "open"), person("on-the-phone")),
            {"status": "busy", "activity": "on-the-phone", "note": ""},
        ),
        # The person's note wins over a tuple's.
        (
            presence(tuple_("a", "open", "device note"), person("vacation", "At the beach")),
            {"status": "away", "activity": "vacation", "note": "At the beach"},
        ),
        (
            presence(tuple_("a", "closed", "Gone home")),
            {"status": "offline", "activity": "", "note": "Gone home"},
        ),
        (
            presence(tuple_("a", "open"), person("tv")),
            {"status": "available", "activity": "tv", "note": ""},
        ),
    ],
)
def test_read_presence(page, body, expected):
    assert call(page, "pidf.js", "readPresence", body) == expected


@pytest.mark.parametrize("status", ["available", "away", "busy", "offline"])
def test_published_pidf_is_valid_and_reads_back(page, status):
    note = '<Lunch> & "coffee" at Bob\'s'
    body = call(
        page,
        "pidf.js",
        "buildPidf",
        {
            "entity": "sip:alice@localhost",
            "tupleId": "t-1",
            "personId": "p-1",
            "status": status,
            "note": note,
        },
    )
    root = etree.fromstring(body.encode())
    schema = load_schema("pidf.xsd")
    assert schema.validate(root), schema.error_log
    assert root.findtext("dm:person/dm:note", namespaces=NS) == note
    activities = [e.tag for e in root.iterfind("dm:person/rpid:activities/*", NS)]
    assert activities == ([f"{{{RPID_NS}}}{status}"] if status in ("away", "busy") else [])
    read = call(page, "pidf.js", "readPresence", body)
    activity = status if status in ("away", "busy") else ""
    assert read == {"status": status, "activity": activity, "note": note}


def winfo(version: int, state: str, *watchers: tuple[str, str, str]) -> str:
    items = "".join(
        f'<watcher id="{wid}" event="subscribe" status="{status}">{uri}</watcher>'
        for wid, status, uri in watchers
    )
    return (
        f'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="{version}" '
        f'state="{state}"><watcher-list resource="sip:alice@localhost" package="presence">'
        f"{items}</watcher-list></watcherinfo>"
    )


def test_watcher_list_full_then_partial_state(page):
    result = page.evaluate(
        """async (bodies) => {
            const { WatcherList } = await import("/static/frontend/js/watcherinfo.js");
            const list = new WatcherList();
            const seen = [];
            for (const body of bodies) {
                const ok = list.apply(body);
                seen.push([ok, list.withStatus("pending").map((w) => w.uri),
                           list.withStatus("active").map((w) => w.uri)]);
            }
            return seen;
        }""",
        [
            winfo(0, "full", ("w1", "pending", "sip:bob@localhost"), ("w2", "active", "sip:c@x")),
            winfo(1, "partial", ("w1", "active", "sip:bob@localhost")),
            winfo(2, "partial", ("w2", "terminated", "sip:c@x")),
            winfo(5, "partial", ("w3", "pending", "sip:dave@localhost")),  # 3 and 4 lost
        ],
    )
    assert result == [
        [True, ["sip:bob@localhost"], ["sip:c@x"]],
        [True, [], ["sip:bob@localhost", "sip:c@x"]],
        [True, [], ["sip:bob@localhost"]],
        [False, [], ["sip:bob@localhost"]],  # the page subscribes again for the full state
    ]


def test_message_summary(page):
    body = (
        "Messages-Waiting: yes\r\nMessage-Account: sip:*97@example.com\r\n"
        "Voice-Message: 2/8 (0/1)\r\n"
    )
    assert call(page, "message-summary.js", "parseMessageSummary", body) == {
        "waiting": True,
        "account": "sip:*97@example.com",
        "voice": {"new": 2, "old": 8, "urgentNew": 0, "urgentOld": 1},
    }
    assert call(page, "message-summary.js", "parseMessageSummary", "Messages-Waiting: no\r\n") == {
        "waiting": False,
        "account": "",
        "voice": None,
    }
    assert call(page, "message-summary.js", "parseMessageSummary", "") is None


LISTS = (
    f'<resource-lists xmlns="{RL_NS}">'
    '<list name="friends"><entry uri="sip:bob@localhost"><display-name>Bob</display-name>'
    "</entry></list>"
    '<list name="work"><entry uri="sip:carol@localhost"/><entry uri="sip:bob@localhost"/></list>'
    "</resource-lists>"
)


def test_contact_list_edits(page):
    entries = page.evaluate(
        """async (xml) => {
            const m = await import("/static/frontend/js/xcap.js");
            return m.listEntries(new DOMParser().parseFromString(xml, "application/xml"));
        }""",
        LISTS,
    )
    assert entries == [
        {"uri": "sip:bob@localhost", "name": "Bob"},
        {"uri": "sip:carol@localhost", "name": ""},
    ]
    changed, added = edit(page, "addEntry", LISTS, "sip:dave@localhost")
    assert changed
    root = etree.fromstring(added.encode())
    assert root.xpath("rl:list[@name='friends']/rl:entry/@uri", namespaces=NS) == [
        "sip:bob@localhost",
        "sip:dave@localhost",
    ]
    assert edit(page, "addEntry", LISTS, "sip:carol@localhost")[0] is False
    changed, removed = edit(page, "removeEntry", LISTS, "sip:bob@localhost")
    assert changed
    assert etree.fromstring(removed.encode()).xpath("//rl:entry/@uri", namespaces=NS) == [
        "sip:carol@localhost"
    ]
    # What the XCAP server checks on a PUT: schema, then RFC 4826's uniqueness rules.
    ResourceLists().validate(etree.fromstring(added.encode()), xui=None, name="index")


RULES = (
    f'<ruleset xmlns="{CP_NS}" xmlns:pr="{PR_NS}">'
    '<rule id="colleagues"><conditions><identity><many domain="localhost"/></identity>'
    "</conditions><actions><pr:sub-handling>confirm</pr:sub-handling></actions></rule>"
    '<rule id="bob"><conditions><identity><one id="sip:bob@localhost"/></identity>'
    "</conditions><actions><pr:sub-handling>allow</pr:sub-handling></actions></rule>"
    "</ruleset>"
)


def test_a_decision_replaces_the_watchers_rule_and_keeps_the_others(page):
    _, blocked = edit(page, "applyDecision", RULES, "sip:bob@localhost", "block")
    root = etree.fromstring(blocked.encode())
    PresRules().validate(root, xui=None, name="index")  # raises what a PUT would get
    assert root.xpath("cp:rule/@id", namespaces=NS)[0] == "colleagues"
    (rule,) = root.xpath("cp:rule[.//cp:one/@id='sip:bob@localhost']", namespaces=NS)
    assert rule.findtext("cp:actions/pr:sub-handling", namespaces=NS) == "block"
    assert rule.find("cp:transformations", NS) is None

    _, allowed = edit(page, "applyDecision", blocked, "sip:bob@localhost", "allow")
    root = etree.fromstring(allowed.encode())
    PresRules().validate(root, xui=None, name="index")
    (rule,) = root.xpath("cp:rule[.//cp:one/@id='sip:bob@localhost']", namespaces=NS)
    assert rule.findtext("cp:actions/pr:sub-handling", namespaces=NS) == "allow"
    provided = [etree.QName(e).localname for e in rule.find("cp:transformations", NS)]
    assert provided == [
        "provide-services",
        "provide-persons",
        "provide-devices",
        "provide-all-attributes",
    ]
