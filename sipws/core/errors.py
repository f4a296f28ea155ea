"""Errors of the SIP core: each carries the status a server answers with."""

from __future__ import annotations

from typing import Any


class ParseError(ValueError):
    """A message, header or URI that does not follow the grammar.

    `status` is what a server answers a request with (400 unless said otherwise); the
    transport drops what it cannot answer at all (RFC 3261 §16.3, §18.3). `message`, when
    set by `parse_message`, is the partly checked Request/Response whose raw headers are
    still good enough to build that answer with `make_response`.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.message: Any = None
