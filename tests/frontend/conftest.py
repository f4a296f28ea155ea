"""The browser for the web client's tests: Debian's Chromium under Playwright, one per module."""

import pytest

from tests.interop.browser_harness import launch_browser


@pytest.fixture(scope="module")
def browser():
    with launch_browser() as browser:
        yield browser
