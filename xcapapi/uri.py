"""XCAP URIs (RFC 4825 §6): the document selector, the node selector after `~~`, the query.

The path is split on raw slashes before anything is percent-decoded: an encoded slash
(%2F) inside the XUI or the document name stays part of that segment, so it can never
climb out of a user's tree, and one inside a node selector's attribute value stays data.
`request.path` cannot serve here, since Django hands it over already decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from .errors import BadRequest, NotFound
from .usages import ApplicationUsage
from .usages import get as get_usage

_XUI = re.compile(r"sip:(?P<user>[^@:;?/\s]+)@(?P<domain>[A-Za-z0-9.\-\[\]:]+)", re.IGNORECASE)
_SEPARATOR = re.compile(r"/(?:~~|%7[Ee]%7[Ee])(?:/|$)")
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"


def raw_path(request) -> str:
    """The request's path as the client sent it, still percent-encoded."""
    scope = getattr(request, "scope", None)
    raw = scope.get("raw_path") if scope else None
    if raw:
        return raw.decode("latin-1")
    return quote(request.path, safe="/" + _SEGMENT_SAFE)


def _decode(text: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("percent-encoded bytes are not UTF-8") from None


def canonical_xui(xui: str) -> tuple[str, str] | None:
    """(user, domain) of an XUI of the form sip:user@domain, or None."""
    match = _XUI.fullmatch(xui)
    return (match["user"], match["domain"].lower()) if match else None


@dataclass(frozen=True)
class XcapTarget:
    """What an XCAP URI points at."""

    usage: ApplicationUsage
    tree: str  # "users" or "global"
    xui: str | None  # sip:user@domain for a user's document; None in the global tree
    username: str | None
    domain: str | None
    name: str  # the document name (the last segment of the document selector)
    node_selector: str | None  # decoded; None for the whole document
    query: str  # decoded query component, holding the xmlns() bindings
    document_path: str  # percent-encoded path below the XCAP root

    @property
    def auid(self) -> str:
        return self.usage.auid

    @property
    def is_global(self) -> bool:
        return self.tree == "global"

    @property
    def home_path(self) -> str:
        """The encoded path of the directory holding the document."""
        return self.document_path.rsplit("/", 1)[0] + "/"


def parse_target(path: str, query: str) -> XcapTarget:
    """Parse the part of a raw path below the XCAP root, e.g. `pres-rules/users/sip:a@b/index`.

    404 for what names no resource this server can have (unknown AUID, no such tree,
    sub-directories, dot segments); 400 for bytes that do not decode.
    """
    separator = _SEPARATOR.search("/" + path)
    node_selector = None
    if separator is not None:
        document_part = ("/" + path)[1 : separator.start()]
        node_selector = _decode(("/" + path)[separator.end() :])
        if not node_selector:
            raise BadRequest("empty node selector after ~~")
    else:
        document_part = path
    decoded_query = _decode(query) if query else ""
    # Some clients percent-encode the '?' before xmlns(): take the bindings from the path.
    if node_selector and "?xmlns(" in node_selector:
        node_selector, _, extra = node_selector.partition("?")
        decoded_query = f"{extra}{decoded_query}"
    raw_segments = document_part.split("/")
    segments = [_decode(segment) for segment in raw_segments]
    if len(segments) < 3 or any(s in ("", ".", "..") or "/" in s for s in segments):
        raise NotFound("no such document")
    usage = get_usage(segments[0])
    if usage is None:
        raise NotFound(f"no application usage {segments[0]!r} here")
    tree = segments[1]
    if tree == "global" and len(segments) == 3:
        name, xui, username, domain = segments[2], None, None, None
    elif tree == "users" and len(segments) == 4 and usage.users_tree:
        xui, name = segments[2], segments[3]
        parsed = canonical_xui(xui)
        username, domain = parsed if parsed else (None, None)
        if parsed:
            xui = f"sip:{username}@{domain}"
    else:
        raise NotFound("no such document")
    document_path = "/".join(quote(segment, safe=_SEGMENT_SAFE) for segment in segments)
    return XcapTarget(
        usage=usage,
        tree=tree,
        xui=xui,
        username=username,
        domain=domain,
        name=name,
        node_selector=node_selector,
        query=decoded_query,
        document_path=document_path,
    )
