"""A small XCAP client for the tests: raw paths over http.client, with its own Digest.

Paths go out exactly as written, quotes and brackets unescaped if the test writes them so,
as SIP SIMPLE clients send them.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_PARAM = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def all(self, name: str) -> list[str]:
        return self.headers.get_all(name) or []

    @property
    def etag(self) -> str | None:
        value = self.headers.get("ETag")
        return value.strip('"') if value else None


def parse_challenges(values: list[str]) -> list[dict[str, str]]:
    found = []
    for value in values:
        scheme, _, rest = value.partition(" ")
        params = {
            m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _PARAM.finditer(rest)
        }
        params["scheme"] = scheme
        found.append(params)
    return found


def digest_header(
    method, uri, user, password, challenge, *, nc=1, cnonce=None, escape_uri=True
) -> str:
    """An Authorization value; `escape_uri=False` copies quotes in the path into the uri
    parameter unescaped, as urllib2-based SIP SIMPLE clients and curl do."""
    algorithm = challenge.get("algorithm", "MD5")
    name = {"MD5": "md5", "SHA-256": "sha256"}[algorithm]

    def h(text: str) -> str:
        return hashlib.new(name, text.encode()).hexdigest()

    realm, nonce = challenge["realm"], challenge["nonce"]
    cnonce = cnonce or os.urandom(8).hex()
    nc_hex = f"{nc:08x}"
    ha1 = h(f"{user}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    response = h(f"{ha1}:{nonce}:{nc_hex}:{cnonce}:auth:{ha2}")
    quoted_uri = uri.replace("\\", "\\\\").replace('"', '\\"') if escape_uri else uri
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{quoted_uri}", '
        f'algorithm={algorithm}, qop=auth, nc={nc_hex}, cnonce="{cnonce}", '
        f'response="{response}"'
    )


@dataclass
class XcapClient:
    base_url: str
    user: str | None = None
    password: str = "secret"
    auth: str = "digest"  # "digest", "basic" or "none"
    algorithm: str = "MD5"
    root: str = "/xcap-root/"
    escape_uri: bool = True
    _challenge: dict | None = field(default=None, repr=False)
    _nc: int = 0

    def request(self, method, path, body=b"", headers=None, *, raw=False) -> Reply:
        """`path` is below the XCAP root unless `raw` (then it is the whole request target)."""
        target = path if raw else self.root + path
        headers = dict(headers or {})
        reply = self._send(method, target, body, headers, self._authorization(method, target))
        if reply.status == 401 and self.auth == "digest" and self.user:
            challenges = parse_challenges(reply.all("WWW-Authenticate"))
            chosen = [
                c
                for c in challenges
                if c["scheme"].lower() == "digest" and c.get("algorithm", "MD5") == self.algorithm
            ]
            if chosen:
                self._challenge, self._nc = chosen[0], 0
                reply = self._send(
                    method, target, body, headers, self._authorization(method, target)
                )
        return reply

    def _authorization(self, method, target) -> str | None:
        if not self.user or self.auth == "none":
            return None
        if self.auth == "basic":
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return f"Basic {token}"
        if self._challenge is None:
            return None
        self._nc += 1
        user = self.user.split("@")[0]
        return digest_header(
            method,
            target,
            user,
            self.password,
            self._challenge,
            nc=self._nc,
            escape_uri=self.escape_uri,
        )

    def _send(self, method, target, body, headers, authorization) -> Reply:
        parts = urlsplit(self.base_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            connection.putrequest(method, target, skip_accept_encoding=True)
            if authorization:
                headers = {**headers, "Authorization": authorization}
            if body or method in ("PUT", "POST"):
                headers.setdefault("Content-Length", str(len(body)))
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders(body or None)
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()

    # Shorthands
    def get(self, path, **headers) -> Reply:
        return self.request("GET", path, headers=_names(headers))

    def put(self, path, body, content_type, **headers) -> Reply:
        if isinstance(body, str):
            body = body.encode()
        return self.request("PUT", path, body, {"Content-Type": content_type, **_names(headers)})

    def delete(self, path, **headers) -> Reply:
        return self.request("DELETE", path, headers=_names(headers))


def _names(headers: dict) -> dict:
    """if_match="x" -> {"If-Match": "x"}."""
    return {"-".join(p.capitalize() for p in k.split("_")): v for k, v in headers.items()}
