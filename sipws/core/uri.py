"""SIP and SIPS URIs (RFC 3261 §19.1) and the name-addr / addr-spec forms around them (§20.10).

URIs are parsed into their parts and serialized back; comparison follows §19.1.4 closely
enough for what a registrar and a presence server compare: scheme, unescaped user, host
(case-insensitive) and port. Other schemes (tel:, urn:, ...) are kept as opaque text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from urllib.parse import unquote

from .errors import ParseError

_TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
_TOKEN = re.compile(rf"^[{_TOKEN_CHARS}]+$")
# gen-value = token / host / quoted-string (RFC 3261 §25.1); host brings ':' and '[]' (IPv6).
_GEN_VALUE = re.compile(rf"^[{_TOKEN_CHARS}:\[\]]+$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9\-.]+$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*$")
# Never part of a URI unescaped: whitespace, controls, and what delimits a URI in a header.
_NOT_IN_URI = re.compile(r"[\x00-\x20\x7f<>\"]")
# What follows the opening quote of a quoted-string, up to the closing one. Possessive: an
# unterminated string fails in one pass instead of backtracking.
_QUOTED_REST = re.compile(r'(?:[^"\\]++|\\.)*+"', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
# What split_outside_quotes stops at, for the separators headers use.
_SPECIALS = {sep: re.compile(f'["<>{sep}]') for sep in ",;"}

# The regular expressions below accept, in one C-speed match, the text that the step-by-step
# parsers after them accept (the common shapes at least; tests/core/test_fastpaths.py checks
# that both give the same result). Text they refuse goes through those parsers, which say
# what is wrong with it.
#
# SIP URI: sip: or sips:, user[:password]@ host[:port] ;params ?headers. '@' occurs only as
# the end of the userinfo, whitespace and controls nowhere; IPv6 references go the long way.
# Each part ends where the next begins, so none needs to give characters back (++, *+).
_NOT_FAST = r"\s\x00-\x1f\x7f<>\"@"
_SIP_URI = re.compile(
    r"([Ss][Ii][Pp][Ss]?):"
    rf"(?:([^{_NOT_FAST}:]++)(?::([^{_NOT_FAST}]*+))?@)?"
    r"([A-Za-z0-9\-.]++)(?::([0-9]{1,5}+))?"
    rf"((?:;(?:[^{_NOT_FAST};?=][^{_NOT_FAST};?]*+)?)*+)"
    rf"(?:\?([^{_NOT_FAST}]*+))?"
)
_HOSTPORT = re.compile(r"([A-Za-z0-9\-.]++)(?::([0-9]{1,5}+))?")
# Header parameters: *( SEMI token [ EQUAL ( token / host / quoted-string ) ] ) without the
# LWS the grammar allows around each part (parse_params' strip()s take it, the slow way).
# Part of the expressions for name-addr here and Via in headers.py; _PARAM then takes the
# parameters out of the text they matched.
_QUOTED = r'"(?:[^"\\]++|\\.)*+"'
_PARAMS_PATTERN = rf"(?:;[{_TOKEN_CHARS}]++(?:=(?:[{_TOKEN_CHARS}:\[\]]++|{_QUOTED}))?+)*+"
_PARAMS = re.compile(_PARAMS_PATTERN, re.DOTALL)
_PARAM = re.compile(rf";([{_TOKEN_CHARS}]++)(?:=([{_TOKEN_CHARS}:\[\]]++|{_QUOTED}))?", re.DOTALL)
# name-addr: a quoted or token display name, then <URI> without whitespace (a sip: or sips:
# one apart, which parse_uri would hand to SipUri.parse), then header parameters.
_NAME_ADDR = re.compile(
    rf'(?:"((?:[^"\\]++|\\.)*+)"\s*+|([{_TOKEN_CHARS}\s]*+))'
    r"<(?:([Ss][Ii][Pp][Ss]?:[^\s>]++)|([^\s>]*+))>"
    rf"({_PARAMS_PATTERN})",
    re.DOTALL,
)


def is_token(value: str) -> bool:
    return bool(_TOKEN.match(value))


def _frozen_builder(cls: type) -> Callable:
    """A function taking a frozen slots dataclass's fields in order and returning the
    instance, at half the cost of cls(...): the generated __init__ of a frozen class goes
    through object.__setattr__ for each field, and parsers build half a dozen instances
    per message. Written out the way dataclasses writes __init__, for the same reason."""
    assert not hasattr(cls, "__post_init__"), "a builder would skip __post_init__"
    names = [f.name for f in fields(cls)]
    lines = [f"def build({', '.join(names)}):", "    self = new(cls)"]
    lines += [f"    set_{name}(self, {name})" for name in names]
    lines.append("    return self")
    namespace = {"new": object.__new__, "cls": cls}
    namespace.update({f"set_{name}": getattr(cls, name).__set__ for name in names})
    exec("\n".join(lines), namespace)
    return namespace["build"]


@dataclass(frozen=True, slots=True)
class SipUri:
    """A sip: or sips: URI; `params` keep their order, a flag parameter maps to None."""

    scheme: str
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    headers: str | None = None

    # A static method: the cache's key is then the text alone, not a (class, text) tuple.
    @staticmethod
    @lru_cache(maxsize=4096)  # immutable, and the same URIs recur request after request
    def parse(text: str) -> SipUri:
        match = _SIP_URI.fullmatch(text.strip())
        if match:
            scheme, user, password, host, port, params, headers = match.groups()
            if port is None or 0 < (port := int(port)) < 65536:
                params = _uri_params(params)
                scheme = scheme.lower()
                return _build_sip_uri(scheme, host, user, password, port, params, headers or None)
        return SipUri._parse_stepwise(text)

    @classmethod
    def _parse_stepwise(cls, text: str) -> SipUri:
        """`parse` one part at a time: for the shapes its regular expression leaves out
        (IPv6 references, odd whitespace) and to say what is wrong."""
        text = text.strip()
        scheme, sep, rest = text.partition(":")
        scheme = scheme.lower()
        if not sep or scheme not in ("sip", "sips"):
            raise ParseError(f"not a SIP URI: {text[:60]!r}")
        if _NOT_IN_URI.search(rest):
            raise ParseError(f"bad character in URI {text[:60]!r}")
        # '@' appears at most once (RFC 3261 §25.1: not in user, password, params or
        # headers), while '?' and ';' may appear in the user part (RFC 4475 §3.1.1.2, §3.1.1.9):
        # so split at '@' before looking for parameters and headers.
        userinfo, at, hostpart = rest.partition("@")
        if not at:
            userinfo, hostpart = "", userinfo
        user = password = None
        if at:
            user, colon, pw = userinfo.partition(":")
            password = pw if colon else None
            if not user:
                raise ParseError("empty user part in URI")
        hostpart, _, headers = hostpart.partition("?")
        hostport, *raw_params = hostpart.split(";")
        host, port = split_hostport(hostport)
        params = tuple(_split_param(p) for p in raw_params if p)
        return cls(scheme, host, user, password, port, params, headers or None)

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out += [":", str(self.port)]
        for name, value in self.params:
            out += [";", name] if value is None else [";", name, "=", value]
        if self.headers:
            out += ["?", self.headers]
        return "".join(out)

    def param(self, name: str, default: str | None = None) -> str | None:
        """A URI parameter by name; names compare case-insensitively and unescaped
        (§19.1.4), values come back as written (still escaped)."""
        name = name.lower()
        for key, value in self.params:
            if _param_name(key) == name:
                return value
        return default

    def has_param(self, name: str) -> bool:
        name = name.lower()
        return any(_param_name(key) == name for key, _ in self.params)

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return value.lower() if value else None

    @property
    def aor(self) -> str:
        """The address-of-record form: scheme:user@host, lowercase host, no port or params."""
        user = unquote(self.user) if self.user is not None else None
        scheme = "sip" if self.scheme == "sips" else self.scheme
        host = self.host.lower()
        return f"{scheme}:{user}@{host}" if user is not None else f"{scheme}:{host}"

    def with_params(self, **params: str | None) -> SipUri:
        kept = tuple((k, v) for k, v in self.params if k.lower() not in params)
        return replace(self, params=kept + tuple(params.items()))

    def matches(self, other: SipUri) -> bool:
        """Equality as RFC 3261 §19.1.4 has it for the parts a registrar compares."""
        return (
            self.scheme == other.scheme
            and _unescape(self.user) == _unescape(other.user)
            and self.host.lower() == other.host.lower()
            and self.port == other.port
            and self.transport == other.transport
        )


def _param_name(key: str) -> str:
    key = key.lower()
    return unquote(key) if "%" in key else key


def _unescape(value: str | None) -> str | None:
    return unquote(value) if value is not None else None


def split_hostport(text: str) -> tuple[str, int | None]:
    """Split host[:port], with IPv6 references in brackets; validates both parts."""
    match = _HOSTPORT.fullmatch(text)
    if match:
        host, port = match.groups()
        if port is None:
            return host, None
        if 0 < (number := int(port)) < 65536:
            return host, number
    return _split_hostport_stepwise(text)


def _split_hostport_stepwise(text: str) -> tuple[str, int | None]:
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError("unterminated IPv6 reference")
        host, rest = text[: end + 1], text[end + 1 :]
        rest = rest.strip()
        if rest and not rest.startswith(":"):
            raise ParseError("junk after IPv6 reference")
        port_text = rest[1:].strip() if rest else None
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ParseError(f"bad IPv6 reference {host[:60]!r}") from None
    else:
        # COLON = SWS ":" SWS (§25.1): a Via sent-by may have LWS around the colon.
        host, colon, port_text = (part.strip() for part in text.partition(":"))
        if not colon:
            port_text = None
        if not _HOSTNAME.match(host):
            raise ParseError(f"bad host {host[:60]!r}")
    port = None
    if port_text is not None:
        if not _PORT.match(port_text) or not 0 < int(port_text) < 65536:
            raise ParseError(f"bad port {port_text[:10]!r}")
        port = int(port_text)
    return host, port


def _uri_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """The parameters of `;a=1;;b` as _SIP_URI matched them: no empty names."""
    params = []
    if text:  # a loop, cheaper than comprehensions for the one or two there are
        for part in text[1:].split(";"):
            if part:
                name, eq, value = part.partition("=")
                params.append((name, value if eq else None))
    return tuple(params)


def _split_param(text: str) -> tuple[str, str | None]:
    name, eq, value = text.partition("=")
    if not name:
        raise ParseError("empty parameter name")
    return name, (value if eq else None)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """The value of To, From, Contact, Route and friends: display name, URI, header params.

    `uri` is a SipUri when the scheme is sip/sips and the raw text otherwise (tel:, urn:...).
    """

    uri: SipUri | str
    display_name: str | None = None
    params: tuple[tuple[str, str | None], ...] = field(default=())
    bracketed: bool = True

    @staticmethod
    @lru_cache(maxsize=4096)  # To and Contact recur; a From differs by its tag alone
    def parse(text: str) -> NameAddr:
        match = _NAME_ADDR.fullmatch(text.strip())
        if match is None:
            return NameAddr._parse_stepwise(text)
        quoted, words, sip_uri, other_uri, params = match.groups()
        if quoted is not None:
            display = _QUOTED_PAIR.sub(r"\1", quoted) if "\\" in quoted else quoted
        elif words:
            display = " ".join(words.split()) or None
        else:
            display = None  # the common <sip:...>, without the join
        uri = SipUri.parse(sip_uri) if sip_uri is not None else parse_uri(other_uri)
        return _build_name_addr(uri, display, _matched_params(params), True)

    @classmethod
    def _parse_stepwise(cls, text: str) -> NameAddr:
        """`parse` one part at a time: for an addr-spec, odd shapes and to say what is wrong."""
        text = text.strip()
        if not text:
            raise ParseError("empty address")
        display = None
        if text.startswith('"'):
            # Read the quoted display name first: it may itself contain '<' or '>'.
            display, end = read_quoted(text, 0)
            rest = text[end:].lstrip()
            if not rest.startswith("<"):
                raise ParseError("quoted display name without <URI>")
            uri_text, params_text = _bracketed(rest[1:])
            bracketed = True
        elif "<" in text.partition('"')[0]:  # a '<' in a quoted param value is no name-addr
            head, _, rest = text.partition("<")
            display = _unquoted_display_name(head)
            uri_text, params_text = _bracketed(rest)
            bracketed = True
        else:
            # addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10),
            # so an addr-spec cannot carry URI parameters or headers.
            uri_text, semi, params_text = text.partition(";")
            uri_text = uri_text.strip()
            params_text = semi + params_text
            bracketed = False
            if any(c in uri_text for c in " \t,?"):
                raise ParseError("addr-spec with reserved characters must use <>")
        params = parse_params(params_text)
        return cls(parse_uri(uri_text), display, params, bracketed)

    def __str__(self) -> str:
        out = []
        if self.display_name:
            out.append(quote_string(self.display_name) + " ")
        out.append(f"<{self.uri}>")
        for name, value in self.params:
            out.append(f";{name}" if value is None else f";{name}={value}")
        return "".join(out)

    def param(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.params:
            if key.lower() == name:
                return value
        return default

    def has_param(self, name: str) -> bool:
        name = name.lower()
        return any(key.lower() == name for key, _ in self.params)

    @property
    def tag(self) -> str | None:
        return self.param("tag")

    @property
    def sip_uri(self) -> SipUri:
        if not isinstance(self.uri, SipUri):
            raise ParseError(f"not a SIP URI: {str(self.uri)[:60]!r}")
        return self.uri

    def with_params(self, **params: str | None) -> NameAddr:
        kept = tuple((k, v) for k, v in self.params if k.lower() not in params)
        return replace(self, params=kept + tuple(params.items()))


_build_sip_uri = _frozen_builder(SipUri)
_build_name_addr = _frozen_builder(NameAddr)


def _bracketed(text: str) -> tuple[str, str]:
    """Split 'uri>params' (the text after '<') into the URI and what follows '>'."""
    uri_text, close, params_text = text.partition(">")
    if not close:
        raise ParseError("unterminated <URI>")
    if uri_text != uri_text.strip():
        # No LWS inside the brackets (RFC 4475 §3.1.2.14): we reject rather than guess.
        raise ParseError("whitespace inside <URI>")
    return uri_text, params_text


def parse_uri(text: str) -> SipUri | str:
    """Any absolute URI: a SipUri for sip/sips, the text itself for other schemes."""
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME.match(scheme) or not rest:
        raise ParseError(f"bad URI {text[:60]!r}")
    if scheme.lower() in ("sip", "sips"):
        return SipUri.parse(text)
    if _NOT_IN_URI.search(rest):
        raise ParseError(f"bad character in URI {text[:60]!r}")
    return text


def _unquoted_display_name(text: str) -> str | None:
    """display-name = *(token LWS): words of token characters (RFC 3261 §25.1)."""
    words = text.split()
    for word in words:
        if not is_token(word):
            raise ParseError(f"display name needs quotes: {text.strip()[:60]!r}")
    return " ".join(words) or None


def read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read the quoted-string starting at text[start] == '"'; return (value, index after)."""
    match = _QUOTED_REST.match(text, start + 1)
    if match is None:
        raise ParseError("unterminated quoted string")
    end = match.end()
    value = text[start + 1 : end - 1]
    return (_QUOTED_PAIR.sub(r"\1", value) if "\\" in value else value), end


_NEEDS_BACKSLASH = re.compile(r'[\\"\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')


def quote_string(value: str) -> str:
    """A quoted-string for `value`; CR and LF cannot be quoted (§25.1), so become spaces."""
    value = value.replace("\r", " ").replace("\n", " ")
    return '"' + _NEEDS_BACKSLASH.sub(lambda m: "\\" + m.group(), value) + '"'


def parse_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """Parse ';name=value;flag' header parameters; quoted values keep their quotes.

    `text` is empty or starts (after LWS) with ';'. Empty parameters (';;') are an error
    (RFC 4475 §3.1.2.1), and so is anything but a token, host or quoted-string as a value.
    """
    if _PARAMS.fullmatch(text):
        return _matched_params(text)
    return _parse_params_stepwise(text)


def _matched_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """The parameters of `text`, which _PARAMS_PATTERN matched."""
    params = []
    if text:  # a loop, cheaper than a comprehension for the one or two there are
        for name, value in _PARAM.findall(text):
            params.append((name, value or None))  # a flag has no value, a value is not empty
    return tuple(params)


def _parse_params_stepwise(text: str) -> tuple[tuple[str, str | None], ...]:
    first, *parts = split_outside_quotes(text, ";")
    if first.strip():
        raise ParseError(f"junk before parameters {first.strip()[:30]!r}")
    params = []
    for part in parts:
        name, eq, value = part.partition("=")
        name = name.strip()
        if not is_token(name):
            raise ParseError(f"bad parameter name {name[:30]!r}")
        if not eq:
            params.append((name, None))
            continue
        value = value.strip()
        if not _is_gen_value(value):
            raise ParseError(f"bad value for parameter {name[:30]!r}")
        params.append((name, value))
    return tuple(params)


def _is_gen_value(value: str) -> bool:
    if value.startswith('"'):
        try:
            return read_quoted(value, 0)[1] == len(value)
        except ParseError:
            return False
    return bool(_GEN_VALUE.match(value))


def split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on the character sep where it is not inside a quoted string or <...>."""
    if '"' not in text and ("<" not in text and ">" not in text or sep not in text):
        return text.split(sep)  # the common cases, at C speed
    # Jump from one character that matters to the next, and over quoted strings whole.
    special = _SPECIALS.get(sep) or re.compile(f'["<>{re.escape(sep)}]')
    parts, start, i, depth = [], 0, 0, 0
    while match := special.search(text, i):
        c, i = match.group(), match.end()
        if c == '"':
            quoted = _QUOTED_REST.match(text, i)
            if quoted is None:
                raise ParseError("unterminated quoted string")
            i = quoted.end()
        elif c == "<":
            depth += 1
        elif c == ">":
            depth = max(0, depth - 1)
        elif depth == 0:
            parts.append(text[start : i - 1])
            start = i
    parts.append(text[start:])
    return parts
