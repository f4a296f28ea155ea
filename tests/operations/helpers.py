"""A JSON client for the operations API, the accounts that use it, and state helpers."""

from __future__ import annotations

import json
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import ProxyHandler, Request, build_opener

from tests.presrules import ruleset

STAFF_SCRIPT = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
User = get_user_model()
staff = User.objects.create_user("ops", password="ops-pw", is_staff=True)
User.objects.create_superuser("root", "root@example.com", "admin-pw")
plain = User.objects.create_user("plain", password="plain-pw")
print(Token.objects.create(user=staff).key, Token.objects.create(user=plain).key)
"""


def _content(answer) -> dict:
    text = answer.read()
    if answer.headers.get("Content-Type", "").startswith("application/json"):
        return json.loads(text or b"null")
    return {"text": text.decode("utf-8", "replace")}


def make_tokens(server) -> dict[str, str]:
    """A staff and a non-staff user with API tokens (and a superuser `root` for admin)."""
    staff, plain = server.manage("shell", "--no-imports", "-c", STAFF_SCRIPT).stdout.split()
    return {"staff": staff, "plain": plain}


class Api:
    def __init__(self, server, token: str | None = None) -> None:
        self.base = server.http_url
        self.token = token
        self.opener = build_opener(ProxyHandler({}))

    def call(
        self, method: str, path: str, body=None, *, headers: dict | None = None, **query
    ) -> tuple[int, dict, dict]:
        """(status, the JSON answer or {"text": ...}, the headers)."""
        url = self.base + path + (f"?{urlencode(query)}" if query else "")
        sent = {"Accept": "application/json", **(headers or {})}
        data = None
        if body is not None:
            data, sent["Content-Type"] = json.dumps(body).encode(), "application/json"
        if self.token:
            sent["Authorization"] = f"Token {self.token}"
        request = Request(url, data=data, method=method, headers=sent)
        try:
            with self.opener.open(request, timeout=15) as answer:
                return answer.status, _content(answer), dict(answer.headers)
        except HTTPError as error:
            return error.code, _content(error), dict(error.headers)

    def get(self, path: str, **query):
        status, content, _ = self.call("GET", path, **query)
        return status, content

    def post(self, path: str, body=None):
        status, content, _ = self.call("POST", path, body)
        return status, content


def subscription_of(server, client) -> dict:
    rows = server.records("SELECT * FROM sipws_activewatcher WHERE call_id = ?", (client.call_id,))
    assert len(rows) == 1, rows
    return rows[0]


def write_rules(server, presentity: str, *rules: str) -> None:
    """Store a pres-rules document straight in the database, as an external tool writing
    Kamailio's xcap table would: no XCAP request, so nothing re-decides the watchers."""
    body = ruleset(*rules)
    user, domain = presentity.removeprefix("sip:").split("@")
    server.manage(
        "shell",
        "--no-imports",
        "-c",
        "import secrets\n"
        "from xcapapi.models import XcapDocument\n"
        "XcapDocument.objects.update_or_create(\n"
        f"    auid='pres-rules', xui={presentity!r}, name='index',\n"
        f"    defaults=dict(username={user!r}, domain={domain!r}, body={body!r}.encode(),\n"
        "        etag=secrets.token_hex(8), content_type='application/auth-policy+xml'))\n",
    )


def drop_rules(server, presentity: str) -> None:
    server.rows("DELETE FROM xcapapi_xcapdocument WHERE xui = ?", (presentity,))
