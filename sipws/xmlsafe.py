"""The one hardened XML parser for every untrusted document the server reads.

Presence bodies, XCAP documents and rules arrive from the network, so parsing must never
expand entities, read files, reach the network or build a huge tree. The simplest rule
that rules out entity bombs and external entities altogether is to refuse any document
type declaration: no SIP or XCAP format in this project needs one.
"""

from __future__ import annotations

import codecs
import threading

from lxml import etree

__all__ = ["XmlError", "parse"]

_FORBIDDEN = ("<!DOCTYPE", "<!ENTITY")

# XML 1.0 appendix F: a document without a byte order mark still shows its encoding
# family in its first bytes, which are always "<?" or "<".
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_WIDE_STARTS = (
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00?\x00", "utf-16-le"),
    (b"\x00<\x00?", "utf-16-be"),
)


class XmlError(ValueError):
    """A document the server refuses; `reason` is short enough for a SIP reason phrase.

    `detail` keeps the parser's own message for the log.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


_local = threading.local()


def _parser() -> etree.XMLParser:
    # lxml advises one parser per thread; Channels runs sync work on a thread pool.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            attribute_defaults=False,
            huge_tree=False,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


def _scan_text(data: bytes) -> str:
    """The document as text good enough to look for markup, whatever its encoding."""
    for prefix, codec in _WIDE_BOMS:
        if data.startswith(prefix):
            return data[len(prefix) :].decode(codec, errors="replace")
    for prefix, codec in _WIDE_STARTS:
        if data.startswith(prefix):
            return data.decode(codec, errors="replace")
    # Every other encoding XML allows keeps ASCII markup as ASCII bytes.
    return data.decode("latin-1")


def parse(data: bytes, *, max_bytes: int) -> etree._Element:
    """Parse untrusted bytes into a root element, or raise `XmlError`.

    Bytes, not text, go to the parser so that the document's own encoding declaration
    (or byte order mark) decides how it is read.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("xmlsafe.parse takes bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise XmlError("XML document too large", f"{len(data)} > {max_bytes} bytes")
    if not data.strip():
        raise XmlError("Empty XML document")
    text = _scan_text(data)
    for marker in _FORBIDDEN:
        if marker in text:
            raise XmlError("DTD not allowed in XML document")
    try:
        root = etree.fromstring(data, parser=_parser())
    except (etree.XMLSyntaxError, ValueError, LookupError) as exc:
        raise XmlError("XML not well-formed", str(exc)) from None
    if root is None:
        raise XmlError("XML not well-formed", "no root element")
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise XmlError("DTD not allowed in XML document")
    return root
