"""Drive the web client page (frontend/) in Debian's Chromium: sign in, add contacts,
approve watchers, read what a contact row shows, and record what the page logs.

Selectors are the page's own labels and ARIA names (`Allow sip:bob@localhost`), so a test
presses the same buttons a keyboard or screen-reader user would.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
TIMEOUT_MS = 10_000

# Chromium logs every HTTP error status of a fetch() as a console error. XCAP answers 404
# for a document the user does not have yet (RFC 4825 §8.1.1); the page then creates it.
MISSING_DOCUMENT = re.compile(r"/xcap-root/(resource-lists|pres-rules)/users/sip:[^/]+/index$")
# While the server is down the browser logs each refused reconnection attempt.
OUTAGE_ERRORS = ("WebSocket connection to", "net::ERR_CONNECTION_REFUSED")
# SIP.js's warnings that are no fault: the server answers a PUBLISH removing the
# publication (Expires: 0) without a SIP-ETag, as the entity is gone.
KNOWN_WARNINGS = ("SIP: sip.Publisher SIP-ETag header missing in a 200-class response",)


class Console:
    """What one page logs. problems() is every error and warning but the expected ones."""

    def __init__(self, page: Page, name: str) -> None:
        self.name = name
        self.entries: list[tuple[str, str, str, bool]] = []  # type, text, url, in outage
        self.outage = False
        page.on("console", self._console)
        page.on(
            "pageerror", lambda error: self.entries.append(("pageerror", str(error), "", False))
        )

    def _console(self, message) -> None:
        url = (message.location or {}).get("url", "")
        self.entries.append((message.type, message.text, url, self.outage))

    def problems(self) -> list[str]:
        found = []
        for kind, text, url, outage in self.entries:
            if kind not in ("error", "warning", "pageerror"):
                continue
            if kind == "error" and "status of 404" in text and MISSING_DOCUMENT.search(url):
                continue
            if kind == "warning" and text.startswith(KNOWN_WARNINGS):
                continue
            if outage and (any(s in text for s in OUTAGE_ERRORS) or text.startswith("SIP: ")):
                continue
            found.append(f"[{self.name} {kind}] {text} {url}".strip())
        return found

    def transcript(self) -> str:
        return "\n".join(f"[{self.name} {k}] {t} {u}" for k, t, u, _ in self.entries)[-8000:]


class Client:
    """One user's signed-in page."""

    def __init__(self, context: BrowserContext, base_url: str, user: str) -> None:
        self.context, self.base_url, self.user = context, base_url, user
        self.aor = f"sip:{user}@localhost"
        self.page = context.new_page()
        self.console = Console(self.page, user)

    def sign_in(self, password: str = "secret") -> Client:
        page = self.page
        page.goto(self.base_url + "/")
        expect(page).to_have_url(re.compile(r"/login/"))
        page.get_by_label("Login").fill(f"{self.user}@localhost")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        self.wait_registered()
        return self

    def wait_registered(self, timeout: int = TIMEOUT_MS) -> None:
        expect(self.page.locator("#connection")).to_have_attribute(
            "data-state", "registered", timeout=timeout
        )

    def contact(self, uri: str):
        return self.page.locator(f'#contact-list li[data-uri="{uri}"]')

    def add_contact(self, address: str) -> None:
        self.page.get_by_label("Add a contact").fill(address)
        self.page.get_by_label("Add a contact").press("Enter")  # the keyboard submits the form
        uri = address if address.startswith("sip:") else f"sip:{address}"
        if "@" not in uri:
            uri += "@localhost"
        expect(self.contact(uri)).to_be_visible(timeout=TIMEOUT_MS)

    def expect_contact(self, uri: str, status: str, note: str | None = None) -> None:
        row = self.contact(uri)
        expect(row).to_have_attribute("data-status", status, timeout=TIMEOUT_MS)
        if note is not None:
            expect(row.locator(".note")).to_have_text(note, timeout=TIMEOUT_MS)

    def pending_watcher(self, uri: str):
        return self.page.locator(f'#pending-list li[data-uri="{uri}"]')

    def decide(self, uri: str, verdict: str) -> None:
        """Allow or Block a pending watcher, with the keyboard."""
        button = self.page.get_by_role("button", name=f"{verdict} {uri}")
        button.focus()
        self.page.keyboard.press("Enter")

    def set_status(self, status: str, note: str = "") -> None:
        self.page.get_by_label("Status", exact=True).select_option(status)
        self.page.get_by_label("Note").fill(note)
        self.page.get_by_role("button", name="Set status").click()

    def state(self) -> str:
        return self.page.locator("#connection").get_attribute("data-state")

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


def befriend(a: Client, b: Client) -> None:
    """a and b add each other and each allows the other from the watcher panel."""
    a.add_contact(b.aor)
    b.add_contact(a.aor)
    a.expect_contact(b.aor, "pending")
    expect(b.pending_watcher(a.aor)).to_be_visible(timeout=TIMEOUT_MS)
    b.decide(a.aor, "Allow")
    expect(a.pending_watcher(b.aor)).to_be_visible(timeout=TIMEOUT_MS)
    a.decide(b.aor, "Allow")
    expect(a.pending_watcher(b.aor)).to_have_count(0, timeout=TIMEOUT_MS)
    expect(b.pending_watcher(a.aor)).to_have_count(0, timeout=TIMEOUT_MS)
