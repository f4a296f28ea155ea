"""The web client (frontend/) in headless Chromium against the real server (issue 6).

Users sign in with their Django login, and each page speaks only the public interfaces:
SIP over WebSocket (SIP.js), XCAP with the session, POST /api/sip-credentials/. Two users
in two browser contexts add each other, approve each other from the watcher panel and see
each other's status and note change without reloading; a voicemail system's REST call
lights the message-waiting panel; a chat message reaches the other user's page and their
UDP phone; a server restart is survived. The screenshots in docs/screenshots/ (shown in
the README) are taken after those real interactions.

The server listens on a fixed free HTTP port, so that after a restart the page reconnects
to the same URL; the default authorization policy is the shipped one, `confirm`.
"""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
from lxml import etree
from playwright.sync_api import expect

from tests.chat import relayed, send_message
from tests.frontend.webclient import TIMEOUT_MS, Client, befriend
from tests.serverproc import provision
from tests.sipclient import SipClient
from xcapapi.usages.base import load_schema

# One pair (or one user) per test, so that each starts with no contacts and no rules.
NAMES = "alice bob carol dave erin frank grace heidi ivan judy ken"
USERS = [(f"{name}@localhost", "secret") for name in NAMES.split()]
NS = {
    "pidf": "urn:ietf:params:xml:ns:pidf",
    "dm": "urn:ietf:params:xml:ns:pidf:data-model",
    "rpid": "urn:ietf:params:xml:ns:pidf:rpid",
    "cp": "urn:ietf:params:xml:ns:common-policy",
    "pr": "urn:ietf:params:xml:ns:pres-rules",
    "rl": "urn:ietf:params:xml:ns:resource-lists",
}
STAFF_TOKEN = """
import re
from io import StringIO
from django.contrib.auth.models import User
from django.core.management import call_command
User.objects.create_user("voicemail", password="vmpw", is_staff=True)
out = StringIO()
call_command("drf_create_token", "voicemail", stdout=out)
print(re.search(r"Generated token (\\w+) for user", out.getvalue()).group(1))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = provision(
        tmp_path_factory.mktemp("web"),
        USERS,
        HTTP_BIND=f"127.0.0.1:{free_port()}",
        PRESENCE_DEFAULT_POLICY="confirm",
    )
    proc.token = proc.manage("shell", "-c", STAFF_TOKEN).stdout.strip().splitlines()[-1]
    proc.start()
    yield proc
    proc.stop()
    assert "Traceback" not in "".join(proc.output), "".join(proc.output)


@pytest.fixture
def sign_in(browser, server):
    """sign_in(user, **context options) -> Client, a page signed in and registered, in a
    browser context of its own (its own cookies: another person at another computer)."""
    clients: list[Client] = []

    def open_(user: str, **options) -> Client:
        options.setdefault("viewport", {"width": 1200, "height": 860})
        client = Client(browser.new_context(**options), server.http_url, user)
        clients.append(client)
        return client.sign_in()

    yield open_
    problems = [p for client in clients for p in client.console.problems()]
    transcripts = "\n".join(client.console.transcript() for client in clients)
    for client in clients:
        client.context.close()
    assert problems == [], transcripts


def xcap(client: Client, auid: str):
    """The user's XCAP document, read with the page's session as the page does."""
    url = f"{client.base_url}/xcap-root/{auid}/users/{client.aor}/index"
    response = client.context.request.get(url)
    assert response.status == 200, response.text()
    return etree.fromstring(response.body())


def mwi_put(server, mailbox: str, new: int, old: int) -> None:
    body = {"messages_waiting": new > 0, "voice": {"new": new, "old": old}}
    request = urllib.request.Request(
        f"{server.http_url}/api/mwi/{mailbox}/",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Authorization": f"Token {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_the_page_needs_a_login(browser, server):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.http_url + "/")
        expect(page).to_have_url(f"{server.http_url}/login/?next=/")
        page.get_by_label("Login").fill("alice@localhost")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("did not match")
        assert context.request.post(f"{server.http_url}/api/sip-credentials/").status == 403
    finally:
        context.close()


def test_a_login_without_a_sip_account_is_told_so(browser, server):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.http_url + "/login/")
        page.get_by_label("Login").fill("voicemail")  # staff, for the MWI API; no SIP account
        page.get_by_label("Password").fill("vmpw")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("has no SIP account")
    finally:
        context.close()


def test_contacts_approve_each_other_and_see_status_live(sign_in, server):
    alice, bob = sign_in("alice"), sign_in("bob")

    alice.add_contact("bob")  # a bare user name means one of our own domain
    bob.add_contact("alice@localhost")
    alice.expect_contact(bob.aor, "pending")
    expect(alice.contact(bob.aor).locator(".status")).to_have_text("Waiting for approval")
    expect(bob.pending_watcher(alice.aor)).to_be_visible(timeout=TIMEOUT_MS)
    bob.screenshot("watcher-approval.png")

    bob.decide(alice.aor, "Allow")
    alice.expect_contact(bob.aor, "available")
    expect(bob.page.locator(f'#active-list li[data-uri="{alice.aor}"]')).to_be_visible()
    alice.decide(bob.aor, "Allow")
    bob.expect_contact(alice.aor, "available")

    # What the approval wrote: an allow rule for that one watcher, providing everything.
    rules = xcap(bob, "pres-rules")
    (rule,) = rules.xpath(
        "cp:rule[cp:conditions/cp:identity/cp:one/@id=$w]", namespaces=NS, w=alice.aor
    )
    assert rule.findtext("cp:actions/pr:sub-handling", namespaces=NS) == "allow"
    assert rule.find("cp:transformations/pr:provide-all-attributes", NS) is not None
    # The contact list is the resource-lists document, created on first use.
    entries = xcap(alice, "resource-lists").xpath("//rl:entry/@uri", namespaces=NS)
    assert entries == [bob.aor]

    bob.set_status("busy", "In a meeting <until> 3 & then lunch")
    alice.expect_contact(bob.aor, "busy", "In a meeting <until> 3 & then lunch")
    alice.set_status("away", "Back at two")
    bob.expect_contact(alice.aor, "away", "Back at two")
    bob.set_status("available", "")
    alice.expect_contact(bob.aor, "available", "")
    bob.set_status("busy", "Writing the quarterly report")
    alice.expect_contact(bob.aor, "busy", "Writing the quarterly report")
    alice.screenshot("contacts-presence.png")

    # Each PUBLISH is a valid PIDF (RFC 3863's schema) with an RPID activity (RFC 4480).
    schema = load_schema("pidf.xsd")
    (row,) = server.records("SELECT body FROM sipws_presentity WHERE uri = ?", (bob.aor,))
    pidf = etree.fromstring(bytes(row["body"]))
    assert schema.validate(pidf), schema.error_log
    assert pidf.xpath("dm:person/rpid:activities/rpid:busy", namespaces=NS)
    assert pidf.findtext("dm:person/dm:note", namespaces=NS) == "Writing the quarterly report"
    assert pidf.findtext("pidf:tuple/pidf:status/pidf:basic", namespaces=NS) == "open"

    # Offline is a closed tuple; signing out removes the publication altogether.
    alice.set_status("offline", "Gone fishing")
    bob.expect_contact(alice.aor, "offline", "Gone fishing")
    alice.page.get_by_role("button", name="Sign out").click()
    expect(alice.page).to_have_url(f"{server.http_url}/login/")
    bob.expect_contact(alice.aor, "offline", "")
    assert server.rows("SELECT id FROM sipws_presentity WHERE uri = ?", (alice.aor,)) == []
    assert server.rows("SELECT id FROM sipws_registration WHERE aor = ?", (alice.aor,)) == []


def test_a_blocked_watcher_sees_nothing(sign_in):
    heidi, ivan = sign_in("heidi"), sign_in("ivan")
    ivan.add_contact(heidi.aor)
    expect(heidi.pending_watcher(ivan.aor)).to_be_visible(timeout=TIMEOUT_MS)
    heidi.decide(ivan.aor, "Block")
    ivan.expect_contact(heidi.aor, "blocked")
    expect(ivan.contact(heidi.aor).get_by_role("button", name="Ask again")).to_be_visible()
    expect(heidi.pending_watcher(ivan.aor)).to_have_count(0)
    rules = xcap(heidi, "pres-rules")
    assert rules.xpath("//pr:sub-handling/text()", namespaces=NS) == ["block"]
    assert rules.find(".//cp:transformations", NS) is None


def test_message_waiting_shows_live(sign_in, server):
    erin = sign_in("erin")
    summary = erin.page.locator("#mwi-summary")
    expect(summary).to_have_text("No new voice messages.", timeout=TIMEOUT_MS)

    mwi_put(server, "erin@localhost", new=2, old=8)
    expect(summary).to_have_text("You have 2 new voice messages.", timeout=TIMEOUT_MS)
    expect(erin.page.locator("#mwi-new")).to_have_text("2")
    expect(erin.page.locator("#mwi-old")).to_have_text("8")
    erin.screenshot("message-waiting.png")

    mwi_put(server, "erin@localhost", new=0, old=10)
    expect(summary).to_have_text("No new voice messages.", timeout=TIMEOUT_MS)
    expect(erin.page.locator("#mwi-old")).to_have_text("10")


def test_chat_reaches_the_page_and_a_udp_phone(sign_in, server):
    frank, grace = sign_in("frank"), sign_in("grace")
    phone = SipClient("udp", server, user="grace")  # grace's desk phone, a second device
    try:
        assert phone.send_authenticated("REGISTER", expires=300).status == 200
        frank.add_contact(grace.aor)
        frank.page.get_by_role("button", name="Chat with grace@localhost").click()
        frank.page.get_by_label("Message").fill("Lunch at noon?")
        frank.page.get_by_label("Message").press("Enter")

        on_phone = relayed(phone)
        assert on_phone.body == "Lunch at noon?"
        assert "sip:frank@localhost" in on_phone.header("From")
        phone.answer(on_phone, 200)

        incoming = grace.page.locator("#chat-log li.in")
        expect(incoming).to_contain_text("Lunch at noon?", timeout=TIMEOUT_MS)
        expect(grace.page.locator("#chat-title")).to_have_text("Chat with frank@localhost")
        expect(frank.page.locator("#chat-log li.out .meta")).to_contain_text("delivered")

        grace.page.get_by_label("Message").fill("Yes, see you there")
        grace.page.get_by_label("Message").press("Enter")
        expect(frank.page.locator("#chat-log li.in")).to_contain_text("Yes, see you there")

        # And from the phone to the browser: MESSAGE over UDP, relayed onto the WebSocket.
        reply = send_message(phone, to="frank", body="Sent from my desk phone")
        assert reply.status == 200, reply.text
        expect(frank.page.locator("#chat-log li.in")).to_have_count(2, timeout=TIMEOUT_MS)
        expect(frank.page.locator("#chat-log li.in").last).to_contain_text("desk phone")
        frank.screenshot("chat.png")
    finally:
        phone.send_authenticated("REGISTER", expires=0)
        phone.close()


def test_fits_a_phone_screen(sign_in):
    judy = sign_in("judy")
    ken = sign_in("ken", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    befriend(ken, judy)
    judy.set_status("available", "At my desk until five")
    ken.expect_contact(judy.aor, "available", "At my desk until five")
    ken.page.get_by_role("button", name="Chat with judy@localhost").click()
    ken.page.get_by_label("Message").fill("Coffee?")
    ken.page.get_by_label("Message").press("Enter")
    expect(ken.page.locator("#chat-log li.out .meta")).to_contain_text("delivered")
    width = ken.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # nothing wider than the screen: no sideways scrolling
    ken.screenshot("phone-width.png")


def test_server_restart_is_survived(sign_in, server):
    carol, dave = sign_in("carol"), sign_in("dave")
    carol.add_contact(dave.aor)
    expect(dave.pending_watcher(carol.aor)).to_be_visible(timeout=TIMEOUT_MS)
    dave.decide(carol.aor, "Allow")
    dave.set_status("away", "Before the restart")
    carol.expect_contact(dave.aor, "away", "Before the restart")

    for client in (carol, dave):
        client.console.outage = True
    server.stop()  # SIGTERM
    for client in (carol, dave):
        expect(client.page.locator("#connection")).to_have_attribute(
            "data-state", "reconnecting", timeout=TIMEOUT_MS
        )
    carol.screenshot("reconnecting.png")
    server.start()  # same data directory, same HTTP port
    for client in (carol, dave):
        client.wait_registered(timeout=30_000)
        client.console.outage = False

    dave.set_status("busy", "After the restart")
    carol.expect_contact(dave.aor, "busy", "After the restart")
    for client in (carol, dave):
        rows = server.rows("SELECT transport FROM sipws_registration WHERE aor = ?", (client.aor,))
        assert rows == [("ws",)], rows
