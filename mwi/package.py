"""The message-summary event package (RFC 3842): message-waiting indication for mailboxes.

Bodies are `application/simple-message-summary` (RFC 3842 §5.2), parsed strictly to the
RFC's ABNF:

    message-summary  = msg-status-line CRLF [msg-account CRLF]
                       [*(msg-summary-line CRLF)] [*opt-msg-headers]
    msg-status-line  = "Messages-Waiting" HCOLON ("yes" / "no")
    msg-account      = "Message-Account" HCOLON Account-URI
    msg-summary-line = message-context-class HCOLON newmsgs SLASH oldmsgs
                       [LPAREN new-urgentmsgs SLASH old-urgentmsgs RPAREN]
    opt-msg-headers  = CRLF 1*(extension-header CRLF)
    msgcount         = 1*DIGIT   ; MUST NOT exceed 2^32-1

with the message-context classes of RFC 3458 (voice-message, fax-message, pager-message,
multimedia-message, text-message, none); names compare case-insensitively, as ABNF
strings do. Stricter than the grammar in one point: a class appears at most once, since
two counts for one class contradict each other.

The publications of one mailbox replace one another (the base class's newest wins), and
a watcher always gets a body: `Messages-Waiting: no` while nothing is published.
Only the mailbox owner may subscribe (RFC 3842 leaves authorization to the server; a
mailbox's contents are nobody else's business).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sipws.core.errors import ParseError
from sipws.core.uri import parse_uri
from sipws.event_packages.base import BadBody, EventPackage, register
from sipws.services import policy

__all__ = [
    "CLASSES",
    "CONTENT_TYPE",
    "MAX_COUNT",
    "NAME",
    "NEUTRAL",
    "Counts",
    "MessageSummary",
    "MessageSummaryPackage",
    "install",
    "is_account_uri",
    "parse",
    "render",
]

NAME = "message-summary"
CONTENT_TYPE = "application/simple-message-summary"
MAX_COUNT = 2**32 - 1  # RFC 3842 §5.2: msgcount MUST NOT exceed 2^32-1
# Our short names (the JSON keys of the REST API) → the line names (RFC 3458 classes).
CLASSES: dict[str, str] = {
    "voice": "Voice-Message",
    "fax": "Fax-Message",
    "pager": "Pager-Message",
    "multimedia": "Multimedia-Message",
    "text": "Text-Message",
    "none": "None",
}
_BY_LINE_NAME = {line.lower(): short for short, line in CLASSES.items()}

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_WS = r"[ \t]*"
_STATUS = re.compile(rf"Messages-Waiting{_WS}:{_WS}(yes|no)", re.IGNORECASE)
_HEADER = re.compile(rf"({_TOKEN}){_WS}:{_WS}(.*)", re.DOTALL)
_COUNTS = re.compile(
    rf"(\d+){_WS}/{_WS}(\d+)(?:{_WS}\({_WS}(\d+){_WS}/{_WS}(\d+){_WS}\){_WS})?", re.ASCII
)
# header-value = *(TEXT-UTF8char / UTF8-CONT / LWS): no control characters but tab.
_HEADER_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")
_FOLD = re.compile(r"\r\n[ \t]+")


@dataclass(frozen=True)
class Counts:
    """The messages of one context class: new and old, and how many of each are urgent."""

    new: int
    old: int
    urgent_new: int = 0
    urgent_old: int = 0


@dataclass(frozen=True)
class MessageSummary:
    """One message-summary body as a value.

    `counts` maps short class names (CLASSES keys) to their counts; `message_headers`
    are the optional blocks of headers describing single messages (RFC 3842 §5.2), each
    a tuple of (name, value).
    """

    messages_waiting: bool
    account: str | None = None
    counts: Mapping[str, Counts] = field(default_factory=dict)
    message_headers: tuple[tuple[tuple[str, str], ...], ...] = ()


NEUTRAL = b"Messages-Waiting: no\r\n"


def _bad(reason: str) -> BadBody:
    return BadBody(400, reason)


def parse(body: bytes) -> MessageSummary:
    """The value of a message-summary body; `BadBody(400, reason)` if it breaks the ABNF."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("body is not UTF-8") from None
    if not text.endswith("\r\n"):
        raise _bad("every line must end in CRLF")
    # Header values may be folded onto continuation lines (LWS, RFC 3261 §7.3.1).
    lines = _FOLD.sub(" ", text).split("\r\n")[:-1]
    if any("\r" in line or "\n" in line for line in lines):
        raise _bad("every line must end in CRLF")
    status = _STATUS.fullmatch(lines[0])
    if status is None:
        raise _bad("the first line must be Messages-Waiting: yes or no")
    position, account = 1, None
    if position < len(lines) and _name(lines[position]) == "message-account":
        account = _account(lines[position])
        position += 1
    counts: dict[str, Counts] = {}
    while position < len(lines) and lines[position]:
        short, value = _summary_line(lines[position])
        if short in counts:
            raise _bad(f"{CLASSES[short]} appears twice")
        counts[short] = value
        position += 1
    return MessageSummary(
        status.group(1).lower() == "yes", account, counts, _message_headers(lines[position:])
    )


def _name(line: str) -> str:
    found = _HEADER.fullmatch(line)
    return found.group(1).lower() if found else ""


def _account(line: str) -> str:
    uri = _HEADER.fullmatch(line).group(2)
    if not is_account_uri(uri):
        raise _bad("Message-Account is not a URI")
    return uri


def is_account_uri(text: str) -> bool:
    """Account-URI = SIP-URI / SIPS-URI / absoluteURI, with no white space around it."""
    try:
        return bool(text) and text == text.strip() and bool(parse_uri(text))
    except ParseError:
        return False


def _summary_line(line: str) -> tuple[str, Counts]:
    name = _name(line)
    if name == "message-account":
        raise _bad("Message-Account must directly follow Messages-Waiting")
    if not name:
        raise _bad(f"not a message-context line: {line[:40]!r}")
    short = _BY_LINE_NAME.get(name)
    if short is None:
        raise _bad(f"unknown message-context class {line.split(':', 1)[0][:40]!r}")
    found = _COUNTS.fullmatch(_HEADER.fullmatch(line).group(2))
    if found is None:
        raise _bad(f"{CLASSES[short]} must read new/old or new/old (urgent-new/urgent-old)")
    numbers = [_count(digits) for digits in found.groups(default="0")]
    return short, Counts(*numbers)


def _count(digits: str) -> int:
    if len(digits.lstrip("0")) > len(str(MAX_COUNT)) or int(digits) > MAX_COUNT:
        raise _bad(f"a message count exceeds {MAX_COUNT}")
    return int(digits)


def _message_headers(lines: list[str]) -> tuple[tuple[tuple[str, str], ...], ...]:
    """After the summary: blocks, each one blank line then one or more headers."""
    blocks: list[tuple[tuple[str, str], ...]] = []
    position = 0
    while position < len(lines):
        position += 1  # the blank line opening the block
        block = []
        while position < len(lines) and lines[position]:
            found = _HEADER.fullmatch(lines[position])
            if found is None or not _HEADER_VALUE.fullmatch(found.group(2)):
                raise _bad("a line after the summary is not a header")
            block.append((found.group(1), found.group(2)))
            position += 1
        if not block:
            raise _bad("an empty line must be followed by message headers")
        blocks.append(tuple(block))
    return tuple(blocks)


def render(summary: MessageSummary) -> bytes:
    """The body for `summary`; urgent counts are written only when one is not zero."""
    lines = [f"Messages-Waiting: {'yes' if summary.messages_waiting else 'no'}"]
    if summary.account:
        lines.append(f"Message-Account: {summary.account}")
    for short, line_name in CLASSES.items():
        counts = summary.counts.get(short)
        if counts is None:
            continue
        text = f"{line_name}: {counts.new}/{counts.old}"
        if counts.urgent_new or counts.urgent_old:
            text += f" ({counts.urgent_new}/{counts.urgent_old})"
        lines.append(text)
    for block in summary.message_headers:
        lines.append("")
        lines += [f"{name}: {value}" for name, value in block]
    return ("\r\n".join(lines) + "\r\n").encode()


class MessageSummaryPackage(EventPackage):
    name = NAME
    content_types = (CONTENT_TYPE,)

    def validate(self, body: bytes, content_type: str) -> None:
        super().validate(body, content_type)
        parse(body)

    def neutral_body(self, presentity_uri: str) -> bytes | None:
        return NEUTRAL


OWNER_ONLY = policy.Decision(policy.FORBIDDEN.status, "only the mailbox owner may subscribe")


def owner_only(watcher: str, presentity: str) -> policy.Decision:
    return policy.ALLOW if watcher == presentity else OWNER_ONLY


def install() -> MessageSummaryPackage:
    """Register the package and its subscription policy (from MwiConfig.ready)."""
    package = register(MessageSummaryPackage())
    policy.register(NAME, owner_only)
    return package
