"""Header names and the typed header values a server reads: Via, CSeq, Event, Expires...

Grammar lives here, behaviour elsewhere. Every parser raises ParseError on bad input.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import ParseError
from .uri import (
    _PARAMS_PATTERN,
    _TOKEN_CHARS,
    _frozen_builder,
    _matched_params,
    is_token,
    parse_params,
    split_hostport,
    split_outside_quotes,
)

# RFC 3261 §7.3.3 and later RFCs' compact forms.
COMPACT_FORMS = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

# The spelling we emit for names whose capitalisation is not plain title case.
_CANONICAL = {
    name.lower(): name
    for name in (
        "Call-ID",
        "CSeq",
        "WWW-Authenticate",
        "SIP-ETag",
        "SIP-If-Match",
        "MIME-Version",
        "RSeq",
        "RAck",
    )
}

# Headers whose comma-separated values are separate entries (RFC 3261 §7.3.1). Others
# (auth headers, Date, ...) contain commas inside one value.
LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "path",
        "allow",
        "allow-events",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "content-encoding",
        "content-language",
        "service-route",
        "alert-info",
        "call-info",
        "error-info",
        "in-reply-to",
        "warning",
        "accept-contact",
        "reject-contact",
        "request-disposition",
    }
)

_SENT_PROTOCOL = re.compile(
    r"^([A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*"
    r"([A-Za-z0-9\-.!%*_+`'~]+)\s+(.*)$",
    re.DOTALL,
)
# A Via as user agents write it: SIP/2.0/transport host[:port];params, in one match
# (tests/core/test_fastpaths.py checks it against Via._parse_stepwise).
_VIA = re.compile(
    rf"SIP/2\.0/([{_TOKEN_CHARS}]++) ([A-Za-z0-9\-.]++)(?::([0-9]{{1,5}}+))?({_PARAMS_PATTERN})",
    re.DOTALL,
)
_CSEQ = re.compile(rf"([0-9]{{1,10}}+) ([{_TOKEN_CHARS}]++)")  # the same, for CSeq


@lru_cache(maxsize=1024)  # a handful of names recur in every message
def canonical_name(name: str) -> str:
    """Expand compact forms and normalise capitalisation of a header name."""
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    if lower in _CANONICAL:
        return _CANONICAL[lower]
    return "-".join(part.capitalize() for part in lower.split("-"))


def split_list(value: str) -> list[str]:
    if "," not in value and '"' not in value:  # one entry, and no quotes to check
        value = value.strip()
        return [value] if value else []
    return [part.strip() for part in split_outside_quotes(value, ",") if part.strip()]


@dataclass(frozen=True, slots=True)
class Via:
    """One Via entry: `SIP/2.0/UDP host:port;branch=z9hG4bK...;rport`."""

    transport: str
    host: str
    port: int | None
    params: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str) -> Via:
        match = _VIA.fullmatch(text)
        if match:
            transport, host, port, params = match.groups()
            if port is None or 0 < (port := int(port)) < 65536:
                return _build_via(transport.upper(), host, port, _matched_params(params))
        return cls._parse_stepwise(text)

    @classmethod
    def _parse_stepwise(cls, text: str) -> Via:
        # LWS is allowed around the slashes (SLASH = SWS "/" SWS, RFC 4475 §3.1.1.1).
        match = _SENT_PROTOCOL.match(text.strip())
        if not match:
            raise ParseError("bad Via sent-protocol")
        name, version, transport, rest = match.groups()
        if name.upper() != "SIP" or version != "2.0":
            raise ParseError("bad Via sent-protocol")
        sent_by, semi, params_text = rest.partition(";")
        host, port = split_hostport(sent_by)
        params = parse_params(semi + params_text)
        return cls(transport.upper(), host, port, params)

    def __str__(self) -> str:
        out = [f"SIP/2.0/{self.transport} {self.host}"]
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params:
            out.append(f";{name}" if value is None else f";{name}={value}")
        return "".join(out)

    def param(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.params:
            if key.lower() == name:
                return value
        return None

    def has_param(self, name: str) -> bool:
        name = name.lower()
        return any(key.lower() == name for key, _ in self.params)

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def sent_by(self) -> str:
        """host:port, with the transport's default port when none is given (§18.2.2)."""
        default = 5061 if self.transport in ("TLS", "TLS-SCTP") else 5060
        return f"{self.host}:{self.port or default}"

    def with_received(self, ip: str, port: int) -> Via:
        """Stamp received/rport as a server must (RFC 3261 §18.2.1, RFC 3581 §4)."""
        params = self.params
        wants_rport = self.has_param("rport")
        ip = ip.strip("[]")
        if wants_rport or not _same_address(self.host, ip):
            params = (*[(k, v) for k, v in params if k.lower() != "received"], ("received", ip))
        if wants_rport:
            params = tuple([(k, str(port) if k.lower() == "rport" else v) for k, v in params])
        # What dataclasses.replace() does, without its look at every field.
        return self.__class__(self.transport, self.host, self.port, params)


_build_via = _frozen_builder(Via)


def _same_address(host: str, ip: str) -> bool:
    """Whether sent-by `host` is literally the source address (§18.2.1): a name never is."""
    host = host.strip("[]")
    if ":" not in host and not host.replace(".", "").isdigit():
        return False  # neither IPv6 nor dotted digits: a name, without an exception to say so
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(ip)
    except ValueError:
        return False


def parse_uint(text: str, what: str) -> int:
    """An unsigned decimal of ASCII digits. Leading zeros are allowed (RFC 4475 §3.1.1.1);
    values longer than 20 digits come back as 10**20 rather than as an error, so callers
    range-check one number (and int() never meets Python's digit-count limit)."""
    text = text.strip()
    if not (text.isdigit() and text.isascii()):  # isdigit() alone takes "١٢" and "²"
        raise ParseError(f"bad {what}")
    if len(text) > 20:
        text = text.lstrip("0") or "0"
    return int(text) if len(text) <= 20 else 10**20


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        match = _CSEQ.fullmatch(text)
        if match and (number := int(match[1])) < 2**31:
            return _build_cseq(number, match[2])
        return cls._parse_stepwise(text)

    @classmethod
    def _parse_stepwise(cls, text: str) -> CSeq:
        parts = text.split()
        if len(parts) != 2 or not is_token(parts[1]):
            raise ParseError("bad CSeq")
        number = parse_uint(parts[0], "CSeq")
        if number >= 2**31:
            raise ParseError("CSeq number out of range")
        return _build_cseq(number, parts[1])

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


_build_cseq = _frozen_builder(CSeq)


@dataclass(frozen=True, slots=True)
class Event:
    """The Event header (RFC 6665 §8.2.1): a package name with an optional `id`."""

    package: str
    params: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Event:
        name, semi, rest = text.strip().partition(";")
        name = name.strip().lower()
        if not name or not is_token(name):
            raise ParseError("bad Event")
        return cls(name, parse_params(semi + rest))

    @property
    def id(self) -> str | None:
        for key, value in self.params:
            if key.lower() == "id":
                return value
        return None

    def __str__(self) -> str:
        return self.package + (f";id={self.id}" if self.id is not None else "")


def parse_delta_seconds(text: str, what: str = "Expires") -> int:
    """A delta-seconds value; too-large values are clamped as RFC 3261 §25.1 allows."""
    return min(parse_uint(text, what), 2**32 - 1)


def parse_max_forwards(text: str) -> int:
    value = parse_uint(text, "Max-Forwards")
    if value > 255:
        raise ParseError("bad Max-Forwards")
    return value


def parse_content_type(text: str) -> str:
    """The media type of Content-Type without parameters, lowercase."""
    media, _, _ = text.partition(";")
    kind, slash, sub = (part.strip().lower() for part in media.partition("/"))
    if not slash or not is_token(kind) or not is_token(sub):
        raise ParseError("bad Content-Type")
    return f"{kind}/{sub}"
