"""Entity tags and the If-Match / If-None-Match preconditions (RFC 9110 §13, RFC 4825 §7.11).

One tag covers a whole document and every element and attribute in it (RFC 4825 §8.5).
SIP SIMPLE clients send tags without quotes, so a bare token is read as a tag too.
"""

from __future__ import annotations

import secrets

from .errors import NotModified, PreconditionFailed


def new_etag() -> str:
    return secrets.token_hex(12)


def quoted(etag: str) -> str:
    return f'"{etag}"'


def _tags(header: str) -> list[tuple[str, bool]]:
    """Split a header into (opaque tag, weak) pairs; ("*", False) for the wildcard."""
    tags = []
    for item in header.split(","):
        item = item.strip()
        if not item:
            continue
        weak = item[:2].upper() == "W/"
        if weak:
            item = item[2:].strip()
        if len(item) >= 2 and item[0] == item[-1] == '"':
            item = item[1:-1]
        tags.append((item, weak))
    return tags


def check_preconditions(
    method: str, current: str | None, if_match: str | None, if_none_match: str | None
) -> None:
    """Raise 412 (or 304 for a read) when the request's conditions do not hold.

    `current` is the document's tag, None when it does not exist. Callers skip this for
    requests that would be answered 404 anyway (RFC 9110 §13.2.1).
    """
    if if_match is not None and if_match.strip():
        tags = _tags(if_match)
        if current is None or not any(
            tag == "*" or (tag == current and not weak) for tag, weak in tags
        ):
            raise PreconditionFailed("If-Match does not match the document's ETag")
    if if_none_match is not None and if_none_match.strip() and current is not None:
        tags = _tags(if_none_match)
        if any(tag == "*" or tag == current for tag, _weak in tags):
            if method in ("GET", "HEAD"):
                raise NotModified(headers={"ETag": quoted(current)})
            raise PreconditionFailed("If-None-Match matches the document's ETag")
