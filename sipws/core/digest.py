"""Server-side digest authentication for SIP and HTTP (RFC 7616, RFC 8760, RFC 3261 §22).

Everything here is a pure function of its inputs: nonces are stateless HMAC tokens that any
node holding the same secret can verify, replay protection sits behind the small
`ReplayGuard` protocol, and `authenticate()` turns the Authorization header values of one
request into an `AuthResult`. Callers answer a failure with 401/407 and one `challenge()`
per algorithm, MD5 first: JsSIP and SIP.js read only the first header and know only MD5.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import unquote

Algorithm = Literal["MD5", "SHA-256"]

# Digest algorithm name (RFC 7616 §6.1) -> hashlib name. RFC 8760 adds SHA-512-256, which
# no SIP client we serve sends and not every OpenSSL build provides.
_HASHES = {"MD5": "md5", "SHA-256": "sha256"}


def _hash_hex(algorithm: str, data: bytes) -> str:
    return hashlib.new(_HASHES[algorithm], data).hexdigest()


def _hex(algorithm: str, text: str) -> str:
    return _hash_hex(algorithm, text.encode("utf-8"))


def _base_algorithm(algorithm: str) -> str | None:
    """The hash behind an algorithm name (MD5-sess -> MD5), or None if unsupported."""
    name = algorithm.upper()
    if name.endswith("-SESS"):
        name = name[: -len("-SESS")]
    return name if name in _HASHES else None


def ha1(username: str, realm: str, password: str, algorithm: Algorithm = "MD5") -> str:
    """H(username:realm:password) in hex: what a SipAccount stores instead of the password."""
    base = _base_algorithm(algorithm)
    if base is None or base != algorithm.upper():
        raise ValueError(f"unsupported digest algorithm: {algorithm!r}")
    return _hex(base, f"{username}:{realm}:{password}")


# Nonces ---------------------------------------------------------------------------------


class NonceStatus(enum.Enum):
    VALID = "valid"
    STALE = "stale"  # ours, but older than the lifetime: re-challenge with stale=true
    INVALID = "invalid"  # not ours: bad format, bad MAC, or issued in the future


_NONCE = re.compile(r"([0-9a-f]{1,16})\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{1,64})")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class NonceFactory:
    """Issues and checks stateless nonces of the form ``<ts_hex>.<salt>.<mac>``.

    The MAC is HMAC-SHA256 over the timestamp and salt, truncated to 128 bits (RFC 2104
    §5 allows half the hash). `max_skew` tolerates clocks of scale-out nodes that differ
    a little: a nonce further in the future than that is refused as INVALID.
    """

    def __init__(self, secret: bytes, lifetime: float, *, max_skew: float = 5.0) -> None:
        if not secret:
            raise ValueError("nonce secret must not be empty")
        if lifetime <= 0:
            raise ValueError("nonce lifetime must be positive")
        self._secret = secret
        self.lifetime = lifetime
        self.max_skew = max_skew

    def _mac(self, stamp: str, salt: str) -> str:
        digest = hmac.new(self._secret, f"{stamp}.{salt}".encode("ascii"), hashlib.sha256)
        return _b64(digest.digest()[:16])

    def make(self, now: float) -> str:
        stamp = format(int(now), "x")
        salt = _b64(secrets.token_bytes(6))
        return f"{stamp}.{salt}.{self._mac(stamp, salt)}"

    def check(self, nonce: str, now: float) -> NonceStatus:
        match = _NONCE.fullmatch(nonce)
        if match is None:
            return NonceStatus.INVALID
        stamp, salt, mac = match.groups()
        if not hmac.compare_digest(mac, self._mac(stamp, salt)):
            return NonceStatus.INVALID
        issued = int(stamp, 16)
        if issued > now + self.max_skew:
            return NonceStatus.INVALID
        if now - issued > self.lifetime:
            return NonceStatus.STALE
        return NonceStatus.VALID


# Replay protection ----------------------------------------------------------------------


class ReplayGuard(Protocol):
    """Remembers the highest nonce-count used with each nonce."""

    def seen(self, nonce: str, nc: int, now: float) -> bool:
        """True if (nonce, nc) is a replay: nc not above the highest seen for this nonce.

        Otherwise records nc as the new highest and returns False.
        """
        ...


class MemoryReplayGuard:
    """A `ReplayGuard` for one process, with bounded memory.

    A nonce is forgotten `lifetime` seconds after its first use: it was issued before that
    use, so by then `NonceFactory.check` already calls it STALE. When `max_entries` nonces
    are remembered the oldest is evicted, which could let that one nonce be replayed until
    it goes stale; size the guard above the number of nonces in use within a lifetime.
    """

    def __init__(self, *, lifetime: float = 300.0, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.lifetime = lifetime
        self.max_entries = max_entries
        # nonce -> (first use, highest nc); insertion order is first-use order
        self._entries: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _forget_old(self, now: float) -> None:
        entries = self._entries
        while entries:
            first_use = next(iter(entries.values()))[0]
            if now - first_use <= self.lifetime:
                break
            entries.popitem(last=False)

    def seen(self, nonce: str, nc: int, now: float) -> bool:
        self._forget_old(now)
        entry = self._entries.get(nonce)
        if entry is not None:
            first_use, highest = entry
            if nc <= highest:
                return True
            self._entries[nonce] = (first_use, nc)
            return False
        if nc <= 0:
            return True
        if len(self._entries) >= self.max_entries:
            self._entries.popitem(last=False)
        self._entries[nonce] = (now, nc)
        return False


# Header values --------------------------------------------------------------------------


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(
    realm: str,
    nonce: str,
    algorithm: Algorithm = "MD5",
    *,
    stale: bool = False,
    opaque: str | None = None,
) -> str:
    """The value of one WWW-Authenticate or Proxy-Authenticate header."""
    parts = [
        f"Digest realm={_quote(realm)}",
        f"nonce={_quote(nonce)}",
        f"algorithm={algorithm}",
        'qop="auth"',
    ]
    if stale:
        parts.append("stale=true")
    if opaque is not None:
        parts.append(f"opaque={_quote(opaque)}")
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Credentials:
    """One parsed Authorization or Proxy-Authorization header (Digest scheme)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: int | None = None
    nc_hex: str | None = None  # nc exactly as sent: the response is computed over it
    userhash: bool = False


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Unquoted values: tolerant of clients that leave a URI or an nc unquoted.
_BARE_VALUE = re.compile(r'[^\s,"]+')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
_WS = " \t\r\n"
_NC = re.compile(r"[0-9A-Fa-f]{1,8}")
_EXT_VALUE = re.compile(r"([A-Za-z0-9!#$&+\-^_`{}~]+)'[A-Za-z0-9-]*'(.*)", re.DOTALL)


def _parse_params(text: str) -> dict[str, str] | None:
    """auth-param list: name=token or name="quoted string", commas between."""
    params: dict[str, str] = {}
    i, end = 0, len(text)
    while True:
        while i < end and (text[i] in _WS or text[i] == ","):
            i += 1
        if i >= end:
            return params
        name_match = _TOKEN.match(text, i)
        if name_match is None:
            return None
        name = name_match.group().lower()
        i = name_match.end()
        while i < end and text[i] in _WS:
            i += 1
        if i >= end or text[i] != "=":
            return None
        i += 1
        while i < end and text[i] in _WS:
            i += 1
        quoted = _QUOTED.match(text, i)
        if quoted is not None:
            value = _UNESCAPE.sub(r"\1", quoted.group(1))
            i = quoted.end()
        else:
            bare = _BARE_VALUE.match(text, i)
            if bare is None:
                return None
            value = bare.group()
            i = bare.end()
        if name in params:
            return None
        params[name] = value
        while i < end and text[i] in _WS:
            i += 1
        if i < end and text[i] != ",":
            return None


def _is_digest(value: str) -> bool:
    scheme = value.strip().split(None, 1)
    return bool(scheme) and scheme[0].lower() == "digest"


def _ext_value(value: str) -> str | None:
    """Decode an RFC 8187 ext-value (username*=UTF-8''J%C3%A4s%C3%B8n)."""
    match = _EXT_VALUE.fullmatch(value)
    if match is None:
        return None
    charset, encoded = match.groups()
    if charset.lower() not in ("utf-8", "iso-8859-1"):
        return None
    try:
        return unquote(encoded, encoding=charset, errors="strict")
    except UnicodeDecodeError:
        return None


def parse_credentials(value: str) -> Credentials | None:
    """Parse an Authorization value; None unless it is well-formed Digest credentials."""
    if not _is_digest(value):
        return None
    params = _parse_params(value.strip()[len("digest") :])
    if params is None:
        return None
    username = params.get("username")
    if "username*" in params:
        if username is not None:
            return None
        username = _ext_value(params["username*"])
    if username is None or any(
        name not in params for name in ("realm", "nonce", "uri", "response")
    ):
        return None
    qop = params.get("qop")
    nc_hex = params.get("nc")
    cnonce = params.get("cnonce")
    if nc_hex is not None and _NC.fullmatch(nc_hex) is None:
        return None
    if qop is not None and (nc_hex is None or cnonce is None):
        return None
    return Credentials(
        username=username,
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"],
        algorithm=params.get("algorithm", "MD5"),
        cnonce=cnonce,
        opaque=params.get("opaque"),
        qop=qop,
        nc=int(nc_hex, 16) if nc_hex is not None else None,
        nc_hex=nc_hex,
        userhash=params.get("userhash", "false").lower() == "true",
    )


# Verification ---------------------------------------------------------------------------


def expected_response(credentials: Credentials, *, method: str, ha1: str, body: bytes = b"") -> str:
    """The request-digest the client should have sent (RFC 7616 §3.4.1, RFC 2069 without qop).

    Raises ValueError when the credentials ask for something we cannot compute.
    """
    c = credentials
    base = _base_algorithm(c.algorithm)
    if base is None:
        raise ValueError(f"unsupported digest algorithm: {c.algorithm!r}")
    if c.algorithm.upper().endswith("-SESS"):
        if c.cnonce is None:
            raise ValueError("-sess algorithm without cnonce")
        ha1 = _hex(base, f"{ha1}:{c.nonce}:{c.cnonce}")
    qop = c.qop.lower() if c.qop is not None else None
    if qop == "auth-int":
        ha2 = _hex(base, f"{method}:{c.uri}:{_hash_hex(base, body)}")
    elif qop in (None, "auth"):
        ha2 = _hex(base, f"{method}:{c.uri}")
    else:
        raise ValueError(f"unsupported qop: {c.qop!r}")
    if qop is None:
        return _hex(base, f"{ha1}:{c.nonce}:{ha2}")
    return _hex(base, f"{ha1}:{c.nonce}:{c.nc_hex}:{c.cnonce}:{c.qop}:{ha2}")


def verify(credentials: Credentials, *, method: str, ha1: str, body: bytes = b"") -> bool:
    """Whether the credentials' response is right for this request and stored HA1."""
    try:
        expected = expected_response(credentials, method=method, ha1=ha1, body=body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, credentials.response.lower())


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The decision for one request.

    `username` is the authenticated user when `ok`; on failure it is the claimed name
    (for logs) or None when no credentials were usable. `stale` asks the caller to put
    stale=true in its challenge: the password was right, only the nonce must be renewed.
    """

    ok: bool
    username: str | None
    stale: bool
    reason: str


def _failure(reason: str, username: str | None = None, *, stale: bool = False) -> AuthResult:
    return AuthResult(ok=False, username=username, stale=stale, reason=reason)


def _pick(header_values: Sequence[str], realm: str) -> Credentials | AuthResult:
    parsed = [parse_credentials(value) for value in header_values]
    candidates = [c for c in parsed if c is not None]
    in_realm = [c for c in candidates if c.realm == realm]
    if in_realm:
        supported = [c for c in in_realm if _base_algorithm(c.algorithm) is not None]
        return (supported or in_realm)[0]
    if candidates:
        return _failure("realm mismatch")
    if any(_is_digest(value) for value in header_values):
        return _failure("bad credentials")
    return _failure("no credentials")


def authenticate(
    header_values: Sequence[str],
    *,
    method: str,
    realm: str,
    lookup_ha1: Callable[[str, str], str | None],
    nonces: NonceFactory,
    replay: ReplayGuard,
    now: float,
    body: bytes = b"",
) -> AuthResult:
    """Check the Authorization (or Proxy-Authorization) values of one request.

    `lookup_ha1(username, algorithm)` gets "MD5" or "SHA-256" and returns the stored HA1
    or None. The nonce MAC is checked before the lookup so forged nonces cost no database
    read, and the nonce-count is recorded only after the password is proven, so a third
    party cannot burn a user's nonce-counts. Credentials without qop (RFC 2069) carry no
    nonce-count: their nonce is good for one request.
    """
    picked = _pick(header_values, realm)
    if isinstance(picked, AuthResult):
        return picked
    c = picked
    base = _base_algorithm(c.algorithm)
    qop_ok = c.qop is None or c.qop.lower() in ("auth", "auth-int")
    # userhash is only legal after a challenge offering it, and we never offer it.
    if base is None or not qop_ok or c.userhash:
        return _failure("bad credentials", c.username)
    status = nonces.check(c.nonce, now)
    if status is NonceStatus.INVALID:
        return _failure("invalid nonce", c.username)
    stored = lookup_ha1(c.username, base)
    if stored is None:
        return _failure("unknown user", c.username)
    if not verify(c, method=method, ha1=stored, body=body):
        return _failure("wrong password", c.username)
    if status is NonceStatus.STALE:
        return _failure("stale nonce", c.username, stale=True)
    if replay.seen(c.nonce, c.nc if c.nc is not None else 1, now):
        return _failure("replayed nonce", c.username, stale=True)
    return AuthResult(ok=True, username=c.username, stale=False, reason="ok")
