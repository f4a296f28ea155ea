"""The browser harness works: Debian's Chromium starts under Playwright, the JsSIP bundle
from frontend/ loads into a page, and such a page may open a WebSocket to loopback."""

import threading

from websockets.sync.server import serve

try:  # works whether or not tests/ is a package
    from .browser_harness import blank_http_page, launch_browser, load_jssip
except ImportError:
    from browser_harness import blank_http_page, launch_browser, load_jssip

OPEN_WS_JS = """(url) => new Promise((resolve) => {
  const ws = new WebSocket(url, 'sip');
  ws.onopen = () => { ws.close(); resolve('open'); };
  ws.onerror = () => resolve('error');
})"""


def test_jssip_loads_into_blank_page():
    with launch_browser() as browser:
        page = load_jssip(browser.new_page())
        assert page.evaluate("typeof JsSIP.UA") == "function"
        assert page.evaluate("typeof JsSIP.WebSocketInterface") == "function"


def test_jssip_loads_into_http_page():
    with blank_http_page() as url, launch_browser() as browser:
        page = browser.new_page()
        page.goto(url)
        load_jssip(page)
        assert page.evaluate("JsSIP.version").startswith("3.")


def _drain(ws):
    for _ in ws:  # ends quietly when the browser closes
        pass


def test_blank_page_reaches_loopback_websocket():
    # An explicit goto('about:blank') is what Local Network Access checks would block.
    with serve(_drain, "127.0.0.1", 0, subprotocols=["sip"]) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ws_url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        with launch_browser() as browser:
            page = browser.new_page()
            page.goto("about:blank")
            assert page.evaluate(OPEN_WS_JS, ws_url) == "open"
        server.shutdown()
