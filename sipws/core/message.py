"""SIP messages (RFC 3261 §7, §20, §25): parse bytes into Request/Response, serialize back.

`parse_message(data)` checks what a server needs before it can act: the start line and
Request-URI, the mandatory headers (Via, To, From, Call-ID, CSeq) and Contact, headers
that may appear once, and Content-Length. Other typed header values are parsed lazily,
when a handler asks for them. `make_response()` builds a response
from a request as §8.2.6 says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from . import tokens
from .errors import ParseError
from .headers import (
    LIST_HEADERS,
    CSeq,
    Event,
    Via,
    canonical_name,
    parse_content_type,
    parse_delta_seconds,
    parse_max_forwards,
    parse_uint,
    split_list,
)
from .uri import NameAddr, SipUri, is_token, parse_uri

MAX_MESSAGE_SIZE = 65536
REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    489: "Bad Event",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    603: "Decline",
}
MANDATORY = ("Via", "To", "From", "Call-ID", "CSeq")
# LIST_HEADERS as canonical_name spells them, for Headers.get_all.
_LIST_HEADERS = frozenset(canonical_name(name) for name in LIST_HEADERS)
# Headers a message carries at most once (RFC 3261 §7.3.1, RFC 4475 §3.3.8, §3.3.9).
SINGLE = ("To", "From", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type")
_LINE_END = re.compile(rb"\r\n|\n")
_REQUEST_LINE = re.compile(r"^([A-Za-z0-9\-.!%*_+`'~]+) (\S+) SIP/([0-9]+\.[0-9]+)$")
# Exactly three digits: "SIP/2.0 4294967301 ..." is not a 429 (RFC 4475 §3.1.2.19). The SP
# before an empty reason phrase is required by the grammar; we accept it missing.
_STATUS_LINE = re.compile(r"^SIP/([0-9]+\.[0-9]+) ([0-9]{3})(?: (.*))?$")


class _parsed_once:  # noqa: N801 (used as a decorator, like functools.cached_property)
    """A header parsed on first use and kept in the instance: `functools.cached_property`
    without the lock it takes on Python 3.11, which a message reads half a dozen times."""

    def __init__(self, parse: Callable) -> None:
        self.parse = parse
        self.__doc__ = parse.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.parse(instance)
        return value


class Headers:
    """An ordered multi-dict of header fields with case-insensitive, compact-aware names."""

    __slots__ = ("_fields", "_first")

    def __init__(self, fields: list[tuple[str, str]] | None = None) -> None:
        self._fields: list[tuple[str, str]] = []
        # Each name's first value, for lookups: a request is asked for a dozen headers
        # between parsing and answering. Built on the first lookup, dropped on a change.
        self._first: dict[str, str] | None = None
        for name, value in fields or ():
            self.add(name, value)

    @classmethod
    def adopt(cls, fields: list[tuple[str, str]]) -> Headers:
        """Headers holding `fields` as they are: names canonical, values str."""
        headers = cls.__new__(cls)
        headers._fields, headers._first = fields, None
        return headers

    def _index(self) -> dict[str, str]:
        first = self._first
        if first is None:
            first = self._first = dict(reversed(self._fields))
        return first

    def add(self, name: str, value: str) -> None:
        name, value = canonical_name(name), str(value)
        self._fields.append((name, value))
        if self._first is not None:
            self._first.setdefault(name, value)

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name with one value, in the first one's place."""
        name = canonical_name(name)
        self._first = None
        for i, (key, _) in enumerate(self._fields):
            if key == name:
                self._fields[i] = (name, str(value))
                self._fields[i + 1 :] = [f for f in self._fields[i + 1 :] if f[0] != name]
                return
        self._fields.append((name, str(value)))

    def remove(self, name: str) -> None:
        name = canonical_name(name)
        self._fields = [f for f in self._fields if f[0] != name]
        self._first = None

    def get(self, name: str, default: str | None = None) -> str | None:
        return (self._first or self._index()).get(canonical_name(name), default)

    def get_all(self, name: str) -> list[str]:
        """All values of a header; list headers are split at their commas."""
        name = canonical_name(name)
        first = self._first or self._index()
        if len(first) == len(self._fields):  # no name repeats
            values = [first[name]] if name in first else []
        else:
            values = [value for key, value in self._fields if key == name]
        if name in _LIST_HEADERS:
            if len(values) == 1:
                return split_list(values[0])
            return [item for value in values for item in split_list(value)]
        return values

    def __contains__(self, name: str) -> bool:
        return canonical_name(name) in self._index()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def copy(self) -> Headers:
        clone = Headers()
        clone._fields = list(self._fields)
        return clone


class Message:
    """What requests and responses share: headers, body and typed header accessors."""

    _to_text: str | None = None  # the To value that `to` holds parsed, once read

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body

    def start_line(self) -> str:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        fields = self.headers._fields
        lines = [f"{name}: {value}\r\n" for name, value in fields if name != "Content-Length"]
        head = f"{self.start_line()}\r\n{''.join(lines)}Content-Length: {len(self.body)}\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body

    @_parsed_once
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        return self.vias[0]

    @_parsed_once
    def cseq(self) -> CSeq:
        return CSeq.parse(self._required("CSeq"))

    @property
    def call_id(self) -> str:
        return self._required("Call-ID")

    @_parsed_once
    def from_(self) -> NameAddr:
        return NameAddr.parse(self._required("From"))

    @_parsed_once
    def to(self) -> NameAddr:
        text = self._required("To")
        to = NameAddr.parse(text)
        self._to_text = text  # make_response answers this text without parsing it again
        return to

    @_parsed_once
    def contacts(self) -> list[NameAddr]:
        """Contact entries; the `*` of an unregister-all is left to the registrar."""
        return [NameAddr.parse(v) for v in self.headers.get_all("Contact") if v != "*"]

    @property
    def expires(self) -> int | None:
        value = self.headers.get("Expires")
        return None if value is None else parse_delta_seconds(value)

    @_parsed_once
    def event(self) -> Event | None:
        value = self.headers.get("Event")
        return None if value is None else Event.parse(value)

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return None if value is None else parse_content_type(value)

    def _required(self, name: str) -> str:
        headers = self.headers
        # `name` is spelled as canonical_name would.
        value = (headers._first or headers._index()).get(name)
        if value is None:
            raise ParseError(f"missing {name}")
        return value


class Request(Message):
    def __init__(
        self, method: str, uri: str, headers: Headers | None = None, body: bytes = b""
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    def start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    @property
    def uri_scheme(self) -> str:
        """The Request-URI scheme, lowercase: what a server checks before answering 416."""
        return self.uri.partition(":")[0].lower()

    @_parsed_once
    def sip_uri(self) -> SipUri:
        """The Request-URI as a SipUri; another scheme raises ParseError 416 (§8.2.2.1)."""
        if self.uri_scheme not in ("sip", "sips"):
            raise ParseError(f"unsupported URI scheme {self.uri_scheme[:30]!r}", 416)
        return SipUri.parse(self.uri)

    def stamp_received(self, ip: str, port: int) -> None:
        """Stamp received/rport on the top Via as a server must (RFC 3261 §18.2.1, RFC 3581
        §4), in the header fields and in `vias`. The Via fields then follow the others, one
        entry each, as a request forwarded from here carries them."""
        vias = self.vias
        stamped = vias[0].with_received(ip, port)
        texts = self.headers.get_all("Via")
        texts[0] = str(stamped)
        headers = self.headers
        fields = [field for field in headers._fields if field[0] != "Via"]
        headers._fields, headers._first = fields + [("Via", text) for text in texts], None
        self.__dict__["vias"] = [stamped, *vias[1:]]  # what parsing the new fields gives

    @property
    def max_forwards(self) -> int:
        value = self.headers.get("Max-Forwards")
        return 70 if value is None else parse_max_forwards(value)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason if reason is not None else REASONS.get(status, "Unknown")

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


def parse_message(
    data: bytes, *, stream: bool = False, max_size: int = MAX_MESSAGE_SIZE
) -> Request | Response:
    """Parse one message. `stream` (TCP) makes Content-Length mandatory (RFC 3261 §18.3).

    Raises ParseError with `.status` (400, 505, 513) and, where the headers could be read,
    `.message` holding what was parsed so that a caller can still answer the request.
    """
    if len(data) > max_size:
        raise too_large(data, max_size)
    # Leading CRLFs are keep-alives or junk between messages (RFC 3261 §7.5).
    data = data.lstrip(b"\r\n")
    end = _head_end(data)
    if end is not None:
        head, body = data[: end[0]], data[end[1] :]
    else:
        head, body = data.rstrip(b"\r\n"), b""
    message, version = _message(head)
    message.body = body
    try:
        if version != "2.0":
            # Answered with 505 (RFC 3261 §21.5.6), which needs the headers read anyway.
            raise ParseError("SIP version not supported", 505)
        _check(message, stream)
    except ParseError as error:
        error.message = message
        raise
    return message


def too_large(data: bytes, max_size: int) -> ParseError:
    """A 513 error carrying the request's headers when they are readable, to answer it."""
    error = ParseError("message too large", 513)
    data = data.lstrip(b"\r\n")
    end = _head_end(data, max_size)
    if end is None:
        return error
    try:
        message, _ = _message(data[: end[0]])
        _ = message.vias, message.cseq, message.from_, message.to, message.call_id
        error.message = message
    except ParseError:
        pass
    return error


def _head_end(data: bytes, limit: int | None = None) -> tuple[int, int] | None:
    """Where the empty line after the headers starts and where the body starts: at the
    first CRLF CRLF, or LF LF (RFC 3261 §7.5), within data[:limit]. Two finds, at C speed."""
    crlf = data.find(b"\r\n\r\n", 0, limit)
    lf = data.find(b"\n\n", 0, limit if crlf < 0 else crlf)
    if lf >= 0:
        return lf, lf + 2
    return (crlf, crlf + 4) if crlf >= 0 else None


def _message(head: bytes) -> tuple[Request | Response, str]:
    """The request or response that the header section `head` makes, and its SIP version."""
    text = head.decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    if text.count("\n") >= len(lines):  # a line also ends at a lone LF
        lines = text.replace("\r\n", "\n").split("\n")
    line, *lines = lines
    if line.startswith("SIP/"):
        match = _STATUS_LINE.match(line)
        if not match or not 100 <= int(match[2]) <= 699:
            raise ParseError("bad status line")
        version, status, reason = match.groups()
        return Response(int(status), reason or "", _header_fields(lines)), version
    match = _REQUEST_LINE.match(line)
    if not match:
        raise ParseError("bad request line")
    method, uri, version = match.groups()
    return Request(method, uri, _header_fields(lines)), version


def _header_fields(lines: list[str]) -> Headers:
    fields: list[tuple[str, str]] = []
    for line in lines:
        name, colon, value = line.partition(":")
        if colon and (canonical := _NAMES_SEEN.get(name)) is not None:
            # Known names never start with LWS, so this is no continuation line.
            fields.append((canonical, value.strip()))
            continue
        if line[:1] in (" ", "\t"):
            # Folded continuation line (RFC 3261 §7.3.1): part of the previous value.
            if not fields:
                raise ParseError("continuation line without a header")
            part = line.strip()
            if part:
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {part}" if value else part)
            continue
        fields.append((_header_name(name, colon, line), value.strip()))
    return Headers.adopt(fields)


# Header names as received → canonical: a message has a dozen, nearly always the same.
_NAMES_SEEN: dict[str, str] = {}
_MAX_NAMES_SEEN = 512  # beyond this (a peer sending made-up names) names are not kept


def _header_name(name: str, colon: str, line: str) -> str:
    stripped = name.strip()
    if not colon or not is_token(stripped):
        raise ParseError(f"bad header line {line[:40]!r}")
    canonical = canonical_name(stripped)
    if len(_NAMES_SEEN) < _MAX_NAMES_SEEN:
        _NAMES_SEEN[name] = canonical
    return canonical


def _check(message: Request | Response, stream: bool) -> None:
    first = message.headers._index()
    for name in MANDATORY:
        if name not in first:
            raise ParseError(f"missing {name}")
    if len(first) < len(message.headers._fields):  # some name repeats
        names = [name for name, _ in message.headers]
        for name in SINGLE:
            if names.count(name) > 1:
                raise ParseError(f"more than one {name}")
    if not first["Call-ID"].strip():
        raise ParseError("empty Call-ID")
    length_text = first.get("Content-Length")
    if length_text is not None:
        length = parse_uint(length_text, "Content-Length")
        if length > len(message.body):
            raise ParseError("body shorter than Content-Length")
        message.body = message.body[:length]
    elif stream:
        raise ParseError("missing Content-Length on a stream transport")
    if not message.vias:
        raise ParseError("empty Via")
    _ = message.cseq
    if isinstance(message, Response):
        # A response is matched by its Via branch and CSeq alone (RFC 3261 §17.1.3);
        # From and To are parsed when read: a NOTIFY fan-out gets hundreds of 200s.
        return
    _ = message.from_, message.to
    if isinstance(message, Request):
        if message.cseq.method != message.method:
            raise ParseError("CSeq method does not match the request method")
        message.max_forwards  # noqa: B018  (validates the value)
        if message.uri_scheme in ("sip", "sips"):
            # Escaped headers have no meaning in a Request-URI (RFC 4475 §3.1.2.11).
            if message.sip_uri.headers is not None:
                raise ParseError("headers in the Request-URI")
        else:
            parse_uri(message.uri)  # well formed; the application answers 416 (§8.2.2.1)
        message.contacts  # noqa: B018


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
) -> Response:
    """A response to `request` per RFC 3261 §8.2.6: Via, From, To (+tag), Call-ID, CSeq."""
    first = request.headers._index()
    fields = [("Via", via) for via in request.headers.get_all("Via")]
    to = first.get("To", "")
    if status > 100 and not _has_tag(request, to):
        to = f"{to};tag={to_tag or new_tag()}"
    fields += [
        ("From", first.get("From", "")),
        ("To", to),
        ("Call-ID", first.get("Call-ID", "")),
        ("CSeq", first.get("CSeq", "")),
    ]
    if status == 100 and (timestamp := first.get("Timestamp")) is not None:
        fields.append(("Timestamp", timestamp))  # §8.2.6.1
    return Response(status, reason, Headers.adopt(fields))


def _has_tag(request: Request, to: str) -> bool:
    if to is request._to_text:  # parsed already, as a received request's is by _check
        return request.to.tag is not None
    try:
        return NameAddr.parse(to).tag is not None
    except ParseError:
        # Answering a malformed request (400): never fail, guess from the text.
        return ";tag=" in "".join(to.split()).lower()


def new_tag() -> str:
    return tokens.token_hex(6)


def new_branch(node: str = "") -> str:
    """A branch for a request of ours; `node` (hex) names the process that sends it, so a
    response reaching another process of a cluster can be passed on (see `branch_node`)."""
    if node:
        return f"z9hG4bK.{node}.{tokens.token_hex(8)}"
    return "z9hG4bK" + tokens.token_hex(8)


_NODE_BRANCH = re.compile(r"z9hG4bK\.([0-9a-f]{4,16})\.")


def branch_node(branch: str) -> str | None:
    """The node named in a branch made by `new_branch(node)`, else None."""
    match = _NODE_BRANCH.match(branch)
    return match.group(1) if match else None


class StreamFramer:
    """Cut a TCP byte stream into SIP messages by Content-Length (RFC 3261 §18.3)."""

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = b""
        self.max_size = max_size

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete messages found. Raises ParseError (513/400)."""
        self._buffer += data
        messages = []
        while True:
            self._buffer = self._buffer.lstrip(b"\r\n")
            bounds = _head_end(self._buffer)
            if bounds is None:
                if len(self._buffer) > self.max_size:
                    raise ParseError("message too large", 513)
                return messages
            head = self._buffer[: bounds[0]]
            length = _content_length(head)
            end = bounds[1] + length
            if end > self.max_size:
                raise too_large(self._buffer, self.max_size)
            if len(self._buffer) < end:
                return messages
            messages.append(self._buffer[:end])
            self._buffer = self._buffer[end:]


def _content_length(head: bytes) -> int:
    lines = _LINE_END.split(head)[1:]
    values = []
    for i, line in enumerate(lines):
        name, colon, value = line.partition(b":")
        if not colon or name[:1] in (b" ", b"\t"):
            continue
        if name.strip().lower() in (b"content-length", b"l"):
            for more in lines[i + 1 :]:
                if more[:1] not in (b" ", b"\t"):
                    break
                value += b" " + more
            values.append(value.strip())
    if not values:
        raise ParseError("missing Content-Length on a stream transport")
    if len(set(values)) > 1:
        # No way to know where the next message starts (RFC 4475 §3.3.9).
        raise ParseError("conflicting Content-Length")
    return parse_uint(values[0].decode("ascii", "replace"), "Content-Length")
