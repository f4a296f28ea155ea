"""Django admin as an admin uses it: log in, add a SIP user, see its registrations, reset its
password, disable it; then check with a real SIP client over UDP."""

import hashlib
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from urllib.error import HTTPError
from urllib.parse import urlencode, urljoin, urlparse
from urllib.request import HTTPCookieProcessor, build_opener

import pytest

from tests.sipclient import SipClient

ADD = "/admin/sipws/sipaccount/add/"
CHANGELIST = "/admin/sipws/sipaccount/"


class FormFields(HTMLParser):
    """The fields a browser would submit for the <form id=...> of a page."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or not attrs.get("name") and tag != "option":
            return
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.fields[attrs["name"]] = attrs.get("value", "on" if kind == "checkbox" else "")
        elif tag == "select":
            self._select = attrs["name"]
            self.fields.setdefault(self._select, "")
        elif tag == "option" and self._select is not None and "selected" in attrs:
            self.fields[self._select] = attrs.get("value", "")
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self.fields[self._textarea] = ""

    def handle_data(self, data):
        if self._textarea is not None:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


class Browser:
    """urllib with a cookie jar: enough of a browser for Django admin and its CSRF check."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = build_opener(HTTPCookieProcessor(CookieJar()))

    def _open(self, path: str, data: bytes | None = None) -> tuple[str, int, str]:
        try:
            with self.opener.open(urljoin(self.base, path), data, timeout=15) as response:
                return urlparse(response.geturl()).path, response.status, response.read().decode()
        except HTTPError as error:
            return urlparse(error.geturl()).path, error.code, error.read().decode()

    def get(self, path: str) -> tuple[str, int, str]:
        return self._open(path)

    def form(self, path: str, form_id: str) -> dict[str, str]:
        _, status, page = self.get(path)
        assert status == 200, page[:500]
        reader = FormFields(form_id)
        reader.feed(page)
        assert "csrfmiddlewaretoken" in reader.fields, f"no form {form_id} on {path}"
        return reader.fields

    def submit(self, path: str, form_id: str, **changes: str | None) -> tuple[str, int, str]:
        """Load the form at `path`, change fields (None unticks/removes one) and post it."""
        fields = self.form(path, form_id)
        for name, value in changes.items():
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value
        return self._open(path, urlencode(fields).encode())


def account(server, username: str) -> dict | None:
    rows = server.records("SELECT * FROM sipws_sipaccount WHERE username = ?", (username,))
    return rows[0] if rows else None


def binding_ids(server, username: str) -> list[tuple]:
    aor = f"sip:{username}@localhost"
    return server.rows("SELECT id FROM sipws_registration WHERE aor = ?", (aor,))


def change_url(server, username: str) -> str:
    return f"/admin/sipws/sipaccount/{account(server, username)['id']}/change/"


def register(server, user: str, password: str, *, client: SipClient | None = None) -> int:
    own = client is None
    client = client or SipClient("udp", server, user=user, password=password)
    try:
        return client.send_authenticated("REGISTER", password=password, expires=600).status
    finally:
        if own:
            client.close()


def add_user(browser: Browser, username: str, password: str, domain: str = "localhost"):
    return browser.submit(
        ADD, "sipaccount_form", username=username, domain=domain, password=password, enabled="on"
    )


@pytest.fixture(scope="module")
def browser(server):
    server.manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "get_user_model().objects.create_superuser('root', 'root@example.com', 'admin-pw')\n",
    )
    browser = Browser(server.http_url)
    path, status, page = browser.submit(
        "/admin/login/?next=/admin/", "login-form", username="root", password="admin-pw"
    )
    assert (path, status) == ("/admin/", 200), page[:500]
    assert "Site administration" in page
    return browser


def test_login_page_needs_the_csrf_token(server):
    anonymous = Browser(server.http_url)
    data = urlencode({"username": "root", "password": "admin-pw"}).encode()
    _, status, _ = anonymous._open("/admin/login/", data)
    assert status == 403


def test_admin_adds_a_sip_user_who_can_register(server, browser):
    path, status, page = add_user(browser, "webuser", "web-pw")

    assert (path, status) == (CHANGELIST, 200), page[:2000]
    row = account(server, "webuser")
    assert row["domain"] == "localhost" and row["enabled"] == 1
    assert row["ha1_md5"] == hashlib.md5(b"webuser:localhost:web-pw").hexdigest()
    assert row["ha1_sha256"] == hashlib.sha256(b"webuser:localhost:web-pw").hexdigest()
    assert not [k for k, v in row.items() if "web-pw" in str(v)]
    assert register(server, "webuser", "web-pw") == 200


def test_add_form_refuses_a_domain_not_served(server, browser):
    path, status, page = add_user(browser, "stranger", "pw", domain="nowhere.test")

    assert (path, status) == (ADD, 200)
    assert "is not served" in page
    assert account(server, "stranger") is None


def test_change_page_shows_current_registrations(server, browser):
    add_user(browser, "seen", "pw")
    client = SipClient("udp", server, user="seen", password="pw")
    try:
        assert register(server, "seen", "pw", client=client) == 200

        _, status, page = browser.get(change_url(server, "seen"))

        assert status == 200
        assert client.contact_uri() in page
        assert "sipws-tests" in page  # the User-Agent column
    finally:
        client.close()


def test_admin_resets_a_password(server, browser):
    add_user(browser, "forgetful", "old-pw")

    path, status, page = browser.submit(
        change_url(server, "forgetful"), "sipaccount_form", password="new-pw"
    )

    assert (path, status) == (CHANGELIST, 200), page[:2000]
    assert register(server, "forgetful", "new-pw") == 200
    assert register(server, "forgetful", "old-pw") == 403


def test_admin_disables_a_user_through_the_change_form(server, browser):
    add_user(browser, "leaving", "pw")
    assert register(server, "leaving", "pw") == 200
    assert len(binding_ids(server, "leaving")) == 1

    path, status, page = browser.submit(
        change_url(server, "leaving"), "sipaccount_form", enabled=None
    )

    assert (path, status) == (CHANGELIST, 200), page[:2000]
    assert account(server, "leaving")["enabled"] == 0
    assert register(server, "leaving", "pw") == 403
    # As `sipuser disable` and the admin action do: a disabled user is unreachable at once.
    assert binding_ids(server, "leaving") == []


def test_disable_action_drops_registrations(server, browser):
    add_user(browser, "bulk", "pw")
    assert register(server, "bulk", "pw") == 200

    path, status, page = browser.submit(
        CHANGELIST,
        "changelist-form",
        action="disable",
        _selected_action=str(account(server, "bulk")["id"]),
    )

    assert (path, status) == (CHANGELIST, 200), page[:2000]
    assert "1 disabled" in page
    assert account(server, "bulk")["enabled"] == 0
    assert binding_ids(server, "bulk") == []
    assert register(server, "bulk", "pw") == 403
