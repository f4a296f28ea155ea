"""A small HTTP client for the MWI REST API: JSON in and out over http.client, with a token
or a Django session (logged in through /admin/login/ with its CSRF token)."""

from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Api:
    base_url: str
    token: str | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)

    def as_token(self, token: str | None) -> Api:
        return Api(self.base_url, token, self.tokens)

    def request(self, method, path, body=None, *, headers=None, raw: bytes | None = None):
        headers = dict(headers or {})
        if raw is None and body is not None:
            raw = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        if self.token is not None:
            headers.setdefault("Authorization", f"Token {self.token}")
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        parts = urlsplit(self.base_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            connection.request(method, path, raw, headers)
            response = connection.getresponse()
            answer = Answer(response.status, response.headers, response.read())
        finally:
            connection.close()
        for value in answer.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie(value)
            self.cookies.update({name: morsel.value for name, morsel in cookie.items()})
        return answer

    def get(self, path, **kwargs) -> Answer:
        return self.request("GET", path, **kwargs)

    def put(self, path, body=None, **kwargs) -> Answer:
        return self.request("PUT", path, body, **kwargs)

    def delete(self, path, **kwargs) -> Answer:
        return self.request("DELETE", path, **kwargs)

    @classmethod
    def logged_in(cls, base_url: str, username: str, password: str) -> Api:
        """A session client: GET the admin login form, POST it with its CSRF token."""
        client = cls(base_url)
        form = client.get("/admin/login/").body.decode()
        middleware_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
        answer = client.request(
            "POST",
            "/admin/login/?next=/admin/",
            raw=urlencode(
                {
                    "username": username,
                    "password": password,
                    "csrfmiddlewaretoken": middleware_token.group(1),
                    "next": "/admin/",
                }
            ).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status == 302 and "sessionid" in client.cookies, answer.body[:500]
        return client

    @property
    def csrf(self) -> dict[str, str]:
        """The header a session client sends with unsafe methods."""
        return {"X-CSRFToken": self.cookies["csrftoken"]}
