"""XCAP errors: each one is a status code, and for 409 an `application/xcap-error+xml` body.

RFC 4825 §11 defines the conflict report: `<xcap-error>` holding one element named for the
condition, with an optional human-readable `phrase`. Everything else the server refuses
with is a plain HTTP status and a short text body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from django.http import HttpResponse

ERROR_NAMESPACE = "urn:ietf:params:xml:ns:xcap-error"
ERROR_MIME = "application/xcap-error+xml"
_XML_UNSAFE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class XcapError(Exception):
    """An answer other than success. `headers` go on the response as they are."""

    status = 500
    reason = "error"

    def __init__(self, phrase: str = "", *, headers: dict[str, str] | None = None) -> None:
        # Parser messages may quote the offending input: keep only what XML can carry.
        phrase = _XML_UNSAFE.sub("?", phrase)
        super().__init__(phrase or self.reason)
        self.phrase = phrase
        self.headers = dict(headers or {})

    def body(self) -> tuple[bytes, str]:
        text = self.phrase or self.reason
        return (text + "\n").encode("utf-8"), "text/plain; charset=utf-8"

    def response(self) -> HttpResponse:
        content, content_type = self.body()
        response = HttpResponse(content, status=self.status, content_type=content_type)
        for name, value in self.headers.items():
            response[name] = value
        return response


class NotModified(XcapError):
    status, reason = 304, "not modified"

    def body(self) -> tuple[bytes, str]:
        return b"", "text/plain"


class BadRequest(XcapError):
    status, reason = 400, "bad request"


class NotFound(XcapError):
    status, reason = 404, "not found"


class MethodNotAllowed(XcapError):
    status, reason = 405, "method not allowed"

    def __init__(self, allow: str, phrase: str = "") -> None:
        super().__init__(phrase, headers={"Allow": allow})


class PreconditionFailed(XcapError):
    status, reason = 412, "precondition failed"


class PayloadTooLarge(XcapError):
    status, reason = 413, "request body too large"


class UnsupportedMediaType(XcapError):
    status, reason = 415, "unsupported media type"


# 409 conflicts (RFC 4825 §11.1) ---------------------------------------------------------


class Conflict(XcapError):
    """A 409 with a detailed conflict report; `element` names the error condition."""

    status = 409
    element = "extension"

    def _inner(self) -> str:
        return ""

    def body(self) -> tuple[bytes, str]:
        phrase = f" phrase={quoteattr(self.phrase)}" if self.phrase else ""
        inner = self._inner()
        condition = (
            f"<{self.element}{phrase}>{inner}</{self.element}>"
            if inner
            else f"<{self.element}{phrase}/>"
        )
        document = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<xcap-error xmlns="{ERROR_NAMESPACE}">{condition}</xcap-error>\n'
        )
        return document.encode("utf-8"), ERROR_MIME


class NotWellFormed(Conflict):
    element, reason = "not-well-formed", "not well-formed"


class NotUtf8(Conflict):
    element, reason = "not-utf-8", "not UTF-8"


class NotXmlFrag(Conflict):
    element, reason = "not-xml-frag", "not an XML fragment of one element"


class NotXmlAttValue(Conflict):
    element, reason = "not-xml-att-value", "not an XML attribute value"


class SchemaValidationError(Conflict):
    element, reason = "schema-validation-error", "schema validation failed"


class CannotInsert(Conflict):
    element, reason = "cannot-insert", "GET after this PUT would not return its body"


class CannotDelete(Conflict):
    element, reason = "cannot-delete", "this DELETE would not be idempotent"


class ConstraintFailure(Conflict):
    element, reason = "constraint-failure", "constraint failed"


class NoParent(Conflict):
    """The document or element to insert into is missing; `ancestor` is the closest one."""

    element, reason = "no-parent", "parent does not exist"

    def __init__(self, phrase: str = "", *, ancestor: str | None = None) -> None:
        super().__init__(phrase)
        self.ancestor = ancestor

    def _inner(self) -> str:
        return f"<ancestor>{escape(self.ancestor)}</ancestor>" if self.ancestor else ""


@dataclass(frozen=True)
class Exists:
    """One value that is not unique: `field` is a node selector relative to the document."""

    field: str
    alt_values: tuple[str, ...] = field(default=())


class UniquenessFailure(Conflict):
    element, reason = "uniqueness-failure", "value not unique"

    def __init__(self, exists: list[Exists], phrase: str = "") -> None:
        super().__init__(phrase)
        self.exists = exists

    def _inner(self) -> str:
        parts = []
        for item in self.exists:
            alts = "".join(f"<alt-value>{escape(v)}</alt-value>" for v in item.alt_values)
            parts.append(f"<exists field={quoteattr(item.field)}>{alts}</exists>")
        return "".join(parts)
