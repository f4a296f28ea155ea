"""The web client keeps what it holds alive (issue 6, items 1, 4 and 9): registration,
presence publication (refreshed with SIP-If-Match), subscriptions and the short-lived
credentials are all renewed before they run out, and a closed page's status lapses.

The server here grants seconds where a deployment grants minutes (every expiry at most
5 s, credentials for 10 s), so the page's own timers run several cycles within the test.
The waits are for what the server records, polled, never fixed sleeps.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.frontend.webclient import TIMEOUT_MS, Client, befriend
from tests.serverproc import provision

SHORT = "5"
CREDENTIALS_TTL = 10


# Records every state the connection badge shows but "registered" (none is expected).
STATE_LOG = """() => {
    window.stateLog = [];
    const badge = document.getElementById("connection");
    new MutationObserver(() => {
        if (badge.dataset.state !== "registered") window.stateLog.push(badge.dataset.state);
    }).observe(badge, {attributes: true, attributeFilter: ["data-state"]});
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = provision(
        tmp_path_factory.mktemp("refresh"),
        [("lena@localhost", "secret"), ("mike@localhost", "secret")],
        PRESENCE_DEFAULT_POLICY="confirm",
        SIP_REGISTER_MIN_EXPIRES="1",
        SIP_REGISTER_MAX_EXPIRES=SHORT,
        PRESENCE_PUBLISH_MIN_EXPIRES="1",
        PRESENCE_PUBLISH_MAX_EXPIRES=SHORT,
        PRESENCE_SUBSCRIBE_MIN_EXPIRES="1",
        PRESENCE_SUBSCRIBE_MAX_EXPIRES=SHORT,
        SIP_EPHEMERAL_LIFETIME=str(CREDENTIALS_TTL),
    )
    proc.start()
    yield proc
    proc.stop()


def wait_until(page, predicate, timeout: float, what: str):
    """Poll predicate, letting Playwright deliver the page's events between polls."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(200)
    return value


def test_everything_is_refreshed_and_a_closed_page_lapses(browser, server):
    lena = Client(browser.new_context(), server.http_url, "lena")
    mike = Client(browser.new_context(), server.http_url, "mike")
    answers = []  # every credentials answer mike's page got

    def issued() -> list[int]:
        return [answer.json()["expires"] for answer in answers]

    mike.page.on(
        "response", lambda r: r.url.endswith("/api/sip-credentials/") and answers.append(r)
    )
    try:
        lena.sign_in()
        mike.sign_in()
        befriend(lena, mike)
        mike.set_status("busy", "Refreshing")
        lena.expect_contact(mike.aor, "busy", "Refreshing")

        def etags() -> set[str]:
            rows = server.rows("SELECT etag FROM sipws_presentity WHERE uri = ?", (mike.aor,))
            return {etag for (etag,) in rows}

        # From here on the connection badge must never leave "registered".
        for client in (lena, mike):
            client.page.evaluate(STATE_LOG)

        # New credentials come before the first ones end; outlive those by more than an
        # expiry: every REGISTER, PUBLISH and SUBSCRIBE refresh since used the new ones.
        first_etags = etags()
        first_end = issued()[0]
        wait_until(mike.page, lambda: len(answers) >= 2, first_end - time.time(), "renewal")
        wait_until(mike.page, lambda: time.time() > first_end + int(SHORT) + 1, 30, "their end")
        for client in (lena, mike):
            assert client.page.evaluate("window.stateLog") == [], client.console.transcript()
            assert client.state() == "registered"
            assert server.rows("SELECT id FROM sipws_registration WHERE aor = ?", (client.aor,))
        # Still one publication, refreshed (a refresh gets a new entity-tag, RFC 3903 §4.2).
        later = etags()
        assert len(later) == 1 and later != first_etags, (first_etags, later)
        # The subscriptions were refreshed too: a change still reaches the watcher.
        mike.set_status("away", "Still here")
        lena.expect_contact(mike.aor, "away", "Still here")
        assert lena.console.problems() == [], lena.console.transcript()
        assert mike.console.problems() == [], mike.console.transcript()

        # Closing the page: its binding ends with the WebSocket, its status with the
        # publication, at the latest when it is no longer refreshed.
        mike.context.close()
        expect(lena.contact(mike.aor)).to_have_attribute(
            "data-status", "offline", timeout=int(SHORT) * 1000 + TIMEOUT_MS
        )
        assert server.rows("SELECT id FROM sipws_registration WHERE aor = ?", (mike.aor,)) == []
    finally:
        lena.context.close()
        mike.context.close()
