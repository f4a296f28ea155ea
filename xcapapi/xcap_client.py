"""An XCAP client (Kamailio's xcap_client): conditional GETs of whole documents.

Blocking, on `http.client`, so it runs in a worker thread, never on the event loop nor
on the database thread. It authenticates as one service account: Digest (RFC 7616, MD5
or SHA-256, the first the server offers) when challenged, Basic only when the server
offers nothing else; with no user set it sends no credentials (a trusted peer, as
OpenXCAP's `trusted_peers`). A Digest challenge is kept and answered ahead of the next
request with a higher nonce-count, so a poll costs one round trip per document.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from sipws.core.digest import Credentials, expected_response, ha1

_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"
_PARAM = re.compile(r'([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_ALGORITHMS = ("MD5", "SHA-256", "MD5-SESS", "SHA-256-SESS")


@dataclass(frozen=True)
class Fetched:
    """One answer: 200 with the document and its tag, 304 (the cached copy is current)
    or 404 (no such document)."""

    status: int
    body: bytes = b""
    etag: str | None = None


class XcapClientError(Exception):
    """A refused or failed fetch; `unreachable` when no HTTP answer came at all."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable


def unquote_etag(value: str | None) -> str | None:
    """The opaque tag of an ETag header (weak or strong), without quotes."""
    if not value:
        return None
    value = value.strip()
    if value[:2].upper() == "W/":
        value = value[2:].strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value or None


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """('digest', {'realm': ..., 'nonce': ...}) from one WWW-Authenticate value."""
    scheme, _, rest = value.strip().partition(" ")
    params = {}
    for match in _PARAM.finditer(rest):
        quoted_value = match.group(2)
        if quoted_value is not None:
            params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", quoted_value)
        else:
            params[match.group(1).lower()] = match.group(3)
    return scheme.lower(), params


class XcapClient:
    def __init__(
        self, root: str, *, user: str = "", password: str = "", timeout: float, max_size: int
    ) -> None:
        parts = urlsplit(root)
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname or "", parts.port
        self.prefix = parts.path.rstrip("/")
        self.user, self.password = user, password
        self.timeout, self.max_size = timeout, max_size
        self._lock = threading.Lock()
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._nc = 0

    def path(self, auid: str, xui: str, name: str = "index") -> str:
        segments = (auid, "users", xui, name)
        return f"{self.prefix}/" + "/".join(quote(s, safe=_SEGMENT_SAFE) for s in segments)

    def get(self, auid: str, xui: str, etag: str | None = None, name: str = "index") -> Fetched:
        """GET one user document, conditional on `etag` (the cached copy's) when given."""
        path = self.path(auid, xui, name)
        headers = {"Accept": "*/*"}
        if etag:
            headers["If-None-Match"] = f'"{etag}"'
        status, received, body = self._send(path, headers, self._authorization(path))
        # A fresh challenge (first request, stale nonce, another realm): answer it, and
        # once more if our answer crossed a newer nonce (stale) on its way.
        for _attempt in range(2):
            if status != 401 or not self.user:
                break
            if not self._choose(received.get_all("WWW-Authenticate") or []):
                raise XcapClientError("no authentication scheme we can answer")
            status, received, body = self._send(path, headers, self._authorization(path))
        if status == 200:
            return Fetched(200, body, unquote_etag(received.get("ETag")))
        if status in (304, 404):
            return Fetched(status)
        if status in (401, 403):
            raise XcapClientError(f"{status}: the service account was refused")
        raise XcapClientError(f"answered {status}")

    # Authentication ----------------------------------------------------------------------

    def _choose(self, values: list[str]) -> bool:
        """Keep the first challenge we can answer: Digest first, Basic otherwise."""
        challenges = [parse_challenge(value) for value in values]
        for scheme, params in challenges:
            algorithm = params.get("algorithm", "MD5").upper()
            qops = [q.strip() for q in params.get("qop", "auth").split(",")]
            if scheme == "digest" and algorithm in _ALGORITHMS and "auth" in qops:
                with self._lock:
                    self._challenge, self._nc = ("digest", params), 0
                return True
        for scheme, params in challenges:
            if scheme == "basic":
                with self._lock:
                    self._challenge = ("basic", params)
                return True
        return False

    def _authorization(self, path: str) -> str | None:
        with self._lock:
            if self._challenge is None or not self.user:
                return None
            scheme, params = self._challenge
            self._nc += 1
            nc = self._nc
        if scheme == "basic":
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return f"Basic {token}"
        algorithm = params.get("algorithm", "MD5")
        qop = "auth" if "qop" in params else None
        credentials = Credentials(
            username=self.user,
            realm=params.get("realm", ""),
            nonce=params.get("nonce", ""),
            uri=path,
            response="",
            algorithm=algorithm,
            cnonce=os.urandom(8).hex(),
            opaque=params.get("opaque"),
            qop=qop,
            nc=nc,
            nc_hex=f"{nc:08x}",
        )
        base = algorithm.upper().removesuffix("-SESS")
        secret = ha1(self.user, credentials.realm, self.password, base)
        response = expected_response(credentials, method="GET", ha1=secret)
        parts = [
            f"username={_q(self.user)}",
            f"realm={_q(credentials.realm)}",
            f"nonce={_q(credentials.nonce)}",
            f"uri={_q(path)}",
            f"algorithm={algorithm}",
            f"response={_q(response)}",
        ]
        if qop:
            parts += [f"qop={qop}", f"nc={credentials.nc_hex}", f"cnonce={_q(credentials.cnonce)}"]
        if credentials.opaque is not None:
            parts.append(f"opaque={_q(credentials.opaque)}")
        return "Digest " + ", ".join(parts)

    # HTTP ----------------------------------------------------------------------------------

    def _send(self, path: str, headers: dict[str, str], authorization: str | None):
        if authorization:
            headers = {**headers, "Authorization": authorization}
        if self.https:
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request("GET", path, headers=headers)
            answer = connection.getresponse()
            body = answer.read(self.max_size + 1)
        except (OSError, http.client.HTTPException) as error:
            raise XcapClientError(str(error) or type(error).__name__, unreachable=True) from None
        finally:
            connection.close()
        if len(body) > self.max_size:
            raise XcapClientError(f"document larger than {self.max_size} bytes")
        return answer.status, answer.headers, body


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
