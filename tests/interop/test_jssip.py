"""JsSIP 3.10 in headless Chromium against the real server over WebSocket (RFC 7118):
registration with digest, and a presence subscription that receives what another client
publishes, from a second JsSIP page or from a UDP phone.

The page comes from 127.0.0.1 on another port than the server's, as a site embedding the
SIP client would be, and the server lists that origin in SIP_WS_ALLOWED_ORIGINS.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import USERS
from tests.serverproc import provision
from tests.sipclient import SipClient

try:  # works whether or not tests/ is a package
    from .browser_harness import REGISTER_JS, blank_http_page, launch_browser, load_jssip
except ImportError:
    from browser_harness import REGISTER_JS, blank_http_page, launch_browser, load_jssip

HERE = Path(__file__).resolve().parent
FRONTEND = HERE.parents[1] / "frontend"
PAGE_HELPERS = HERE / "jssip_presence.js"
# JsSIP 3.10 has no UA.subscribe() and no Publisher; its npm package ships Subscriber in
# lib-es5 without exporting it. This bundle exports it, with what a PUBLISH needs.
BUNDLE_ENTRY = """
const JsSIP = require('jssip/lib-es5/JsSIP.js');
JsSIP.Subscriber = require('jssip/lib-es5/Subscriber.js');
JsSIP.RequestSender = require('jssip/lib-es5/RequestSender.js');
JsSIP.SIPMessage = require('jssip/lib-es5/SIPMessage.js');
module.exports = JsSIP;
"""


def pidf(user: str, tuple_id: str, note: str, basic: str = "open") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:{user}@localhost">'
        f'<tuple id="{tuple_id}"><status><basic>{basic}</basic></status>'
        f"<note>{note}</note></tuple></presence>"
    )


@pytest.fixture(scope="module")
def page_url():
    with blank_http_page() as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory, page_url):
    origin = page_url.rstrip("/")
    proc = provision(tmp_path_factory.mktemp("server"), USERS, SIP_WS_ALLOWED_ORIGINS=origin)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser():
    with launch_browser() as browser:
        yield browser


@pytest.fixture(scope="module")
def presence_bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("jssip") / "jssip-presence.js"
    subprocess.run(
        [
            str(FRONTEND / "node_modules" / ".bin" / "esbuild"),
            "--bundle",
            "--minify",
            "--platform=browser",
            "--target=es2017",
            "--format=iife",
            "--global-name=JsSIP",
            "--log-level=warning",
            f"--outfile={out}",
        ],
        input=BUNDLE_ENTRY,
        cwd=FRONTEND,  # where require('jssip/...') resolves
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out


_DEBUG_STYLING = re.compile(r" \+\d+m?s( color: \S+)*\s*$")  # the `debug` module's CSS args


class Console:
    """Everything a page logs, JsSIP's debug output (every SIP message) included."""

    def __init__(self, page, name: str) -> None:
        self.name, self.lines, self.problems = name, [], []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))

    def _console(self, message) -> None:
        text = _DEBUG_STYLING.sub("", message.text.replace("%c", ""))
        self.lines.append(f"[{self.name} {message.type}] {text}")
        if message.type in ("error", "warning"):
            self.problems.append(text)

    def transcript(self) -> str:
        return "\n".join(self.lines)[-12000:]


@pytest.fixture
def open_page(browser, page_url):
    """open_page(name, bundle=None) -> (page, console): a fresh page at page_url with
    JsSIP loaded, the harness bundle by default. Closed at the end of the test."""
    context = browser.new_context()
    consoles: list[Console] = []

    def open_(name: str, bundle: Path | None = None):
        page = context.new_page()
        console = Console(page, name)
        consoles.append(console)
        page.goto(page_url)
        if bundle is None:
            load_jssip(page)
        else:
            page.add_script_tag(path=str(bundle))
            page.add_script_tag(path=str(PAGE_HELPERS))
        page.evaluate("JsSIP.debug.enable('JsSIP:*')")
        return page, console

    yield open_
    context.close()


def ws_rows(server, aor: str) -> list[dict]:
    return server.records(
        "SELECT contact, transport, connection FROM sipws_registration WHERE aor = ?", (aor,)
    )


def test_register_over_websocket(server, open_page):
    page, console = open_page("alice")
    args = {"wsUrl": server.ws_url, "uri": "sip:alice@localhost", "password": "secret"}
    assert page.evaluate(REGISTER_JS, args) == "registered", console.transcript()
    rows = ws_rows(server, "sip:alice@localhost")
    assert len(rows) == 1, rows
    assert rows[0]["transport"] == "ws"
    assert ".invalid" in rows[0]["contact"]
    assert rows[0]["connection"]
    assert console.problems == [], console.transcript()

    # The binding lives as long as the WebSocket connection (RFC 5626 flow).
    page.close()
    gone = server.wait_for(lambda: not ws_rows(server, "sip:alice@localhost"))
    assert gone, ws_rows(server, "sip:alice@localhost")


def test_register_with_wrong_password_fails(server, open_page):
    page, console = open_page("bob")
    args = {"wsUrl": server.ws_url, "uri": "sip:bob@localhost", "password": "wrong"}
    # 403 after JsSIP's credentials ('Authentication Error' would mean it sent none).
    assert page.evaluate(REGISTER_JS, args) == "failed:Rejected", console.transcript()
    assert "Authorization: Digest" in console.transcript()
    assert ws_rows(server, "sip:bob@localhost") == []


def start(page, server, user: str) -> None:
    args = {"wsUrl": server.ws_url, "uri": f"sip:{user}@localhost", "password": "secret"}
    assert page.evaluate("(args) => sipTest.start(args)", args) == "connected"


def subscribe(page, console, target: str) -> None:
    result = page.evaluate("(target) => sipTest.subscribe({target})", target)
    assert result == "accepted", console.transcript()


def wait_for_notify(page, marker: str) -> list:
    """The first 'notify' event, [name, isFinal, body, contentType], whose body has marker."""
    page.wait_for_function(
        "(m) => sipTest.events.some((e) => e[0] === 'notify' && e[2].includes(m))",
        arg=marker,
        timeout=5000,
    )
    events = page.evaluate("sipTest.events")
    return next(e for e in events if e[0] == "notify" and marker in e[2])


def unsubscribe(page, console) -> None:
    # 6: RECEIVE_FINAL_NOTIFY, the final NOTIFY (Subscription-State: terminated) arrived.
    assert page.evaluate("sipTest.unsubscribe()") == 6, console.transcript()


def test_jssip_watcher_sees_what_jssip_publishes(server, open_page, presence_bundle):
    bob, bob_console = open_page("bob", presence_bundle)
    alice, alice_console = open_page("alice", presence_bundle)
    start(bob, server, "bob")
    start(alice, server, "alice")
    subscribe(bob, bob_console, "sip:alice@localhost")
    assert server.rows(
        "SELECT status FROM sipws_activewatcher WHERE watcher_uri = ? AND presentity_uri = ?",
        ("sip:bob@localhost", "sip:alice@localhost"),
    ) == [("active",)]

    body = pidf("alice", "jssip-alice", "Lunch with JsSIP")
    published = alice.evaluate("(body) => sipTest.publish({body})", body)
    assert published["status"] == 200 and published["etag"], alice_console.transcript()

    _, is_final, received, content_type = wait_for_notify(bob, "Lunch with JsSIP")
    assert not is_final
    assert content_type == "application/pidf+xml"
    assert 'entity="sip:alice@localhost"' in received
    assert '<tuple id="jssip-alice">' in received
    assert "<basic>open</basic>" in received

    # Remove the publication (RFC 3903 §4.6), then end the subscription from JsSIP.
    removed = alice.evaluate("(etag) => sipTest.publish({etag, expires: 0})", published["etag"])
    assert removed["status"] == 200, alice_console.transcript()
    unsubscribe(bob, bob_console)
    assert server.rows("SELECT id FROM sipws_activewatcher") == []
    assert bob_console.problems == [], bob_console.transcript()
    assert alice_console.problems == [], alice_console.transcript()


def test_jssip_watcher_sees_what_a_udp_phone_publishes(server, open_page, presence_bundle):
    carol, console = open_page("carol", presence_bundle)
    start(carol, server, "carol")
    subscribe(carol, console, "sip:alice@localhost")

    phone = SipClient("udp", server, user="alice")
    try:
        body = pidf("alice", "udp-phone", "On the desk phone")
        headers = ["Event: presence", "Content-Type: application/pidf+xml"]
        reply = phone.send_authenticated("PUBLISH", headers=headers, body=body, expires=300)
        assert reply.status == 200, reply.text

        _, is_final, received, _ = wait_for_notify(carol, "On the desk phone")
        assert not is_final
        assert '<tuple id="udp-phone">' in received

        etag = reply.header("SIP-ETag")
        headers = ["Event: presence", f"SIP-If-Match: {etag}"]
        removed = phone.send_authenticated("PUBLISH", headers=headers, expires=0)
        assert removed.status == 200, removed.text
    finally:
        phone.close()
    unsubscribe(carol, console)
    assert console.problems == [], console.transcript()
