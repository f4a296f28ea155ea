"""Drive a real browser SIP client (JsSIP in Debian's Chromium) from tests, via Playwright.

Playwright's own browser download cannot run here, so this always launches the system
Chromium (`apt-get install chromium`, done by tools/install-system-deps.sh). The JsSIP
bundle is built by `npm ci` in frontend/ (its postinstall runs esbuild).

    with launch_browser() as browser:
        page = load_jssip(browser.new_page())
        args = {"wsUrl": "ws://127.0.0.1:8000/ws", "uri": "sip:alice@example.com",
                "password": "secret"}
        assert page.evaluate(REGISTER_JS, args) == "registered"
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
JSSIP_BUNDLE = REPO_ROOT / "frontend" / "node_modules" / "jssip" / "dist" / "jssip.min.js"
CHROMIUM = "/usr/bin/chromium"
# Required on this machine: root needs --no-sandbox, and the closed network refuses
# Chromium's background connections (updates, sync, QUIC probes) unless they are off.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Chromium's Local Network Access checks block ws://127.0.0.1 from a page navigated to
    # about:blank (ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS); tests' pages are artificial.
    "--disable-features=LocalNetworkAccessChecks",
]

# page.evaluate(REGISTER_JS, {"wsUrl", "uri", "password"[, "timeoutMs"]}) -> "registered",
# "failed:<cause>" or "timeout". A registered UA stays in window.__jssipUA for later steps.
REGISTER_JS = """
({wsUrl, uri, password, timeoutMs = 10000}) => new Promise((resolve) => {
  const socket = new JsSIP.WebSocketInterface(wsUrl);
  const ua = new JsSIP.UA({sockets: [socket], uri, password, register: true});
  const timer = setTimeout(() => { ua.stop(); resolve('timeout'); }, timeoutMs);
  ua.on('registered', () => {
    clearTimeout(timer);
    window.__jssipUA = ua;
    resolve('registered');
  });
  ua.on('registrationFailed', (e) => {
    clearTimeout(timer);
    ua.stop();
    resolve('failed:' + e.cause);
  });
  ua.start();
})
"""


@contextlib.contextmanager
def launch_browser() -> Iterator[Browser]:
    """Headless Debian Chromium under Playwright; closed on exit."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def load_jssip(page: Page) -> Page:
    """Inject the JsSIP bundle (global `JsSIP`) into the page as it stands (about:blank
    for a new page, or whatever it was navigated to) and return the page."""
    if not JSSIP_BUNDLE.is_file():
        raise FileNotFoundError(f"{JSSIP_BUNDLE} missing: run `npm ci` in frontend/")
    page.add_script_tag(path=str(JSSIP_BUNDLE))
    return page


class _BlankHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = b"<!doctype html><title>sip test</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@contextlib.contextmanager
def blank_http_page() -> Iterator[str]:
    """Serve a blank page on 127.0.0.1 (port chosen by the OS) and yield its URL, for
    a test that needs an http:// origin rather than about:blank."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BlankHandler)
    thread = threading.Thread(target=functools.partial(server.serve_forever, 0.1), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
