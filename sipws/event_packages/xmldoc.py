"""What the XML event packages share: a schema per thread, stored bodies read back, output.

PIDF (presence) and dialog-info (dialog, dialog;sla) are checked against a small XML
Schema written from their RFC, composed from the publications the engine stored, and
written out with one XML declaration.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence

from lxml import etree

from sipws import xmlsafe
from sipws.event_packages.base import Publication

__all__ = ["Schema", "merged_nsmap", "serialize", "stored_root"]

log = logging.getLogger(__name__)

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_ELEMENT = re.compile(r"Element '(?:\{[^}]*\})?([\w.-]+)'", re.ASCII)
_ATTRIBUTE = re.compile(r"attribute '([\w.-]+)'", re.ASCII)


class Schema:
    """An XML Schema compiled once per thread: a validator keeps its error log on itself."""

    def __init__(self, xsd: bytes) -> None:
        self._xsd = xsd
        self._local = threading.local()

    def error(self, root: etree._Element) -> str | None:
        """None if `root` is valid, else the validator's message about it."""
        schema = getattr(self._local, "schema", None)
        if schema is None:
            schema = self._local.schema = etree.XMLSchema(etree.fromstring(self._xsd))
        if schema.validate(root):
            return None
        return schema.error_log.last_error.message if schema.error_log else ""

    @staticmethod
    def culprit(message: str) -> tuple[str | None, str | None]:
        """(element, attribute) a validator's message is about. Both are NCNames, safe in
        a reason phrase, unlike the values the message quotes."""
        element = _ELEMENT.match(message)
        attribute = _ATTRIBUTE.search(message) if element else None
        return (
            element.group(1) if element else None,
            attribute.group(1) if attribute else None,
        )


def stored_root(publication: Publication, root_tag: str) -> etree._Element | None:
    """A stored publication's root element, or None (logged) if it is not `root_tag`.

    The size limit guarded the PUBLISH, so a stored body is read whatever its size; one
    that does not parse (a row edited by hand) is left out rather than failing every
    watcher.
    """
    body = publication.body
    try:
        root = xmlsafe.parse(body, max_bytes=max(len(body), 1))
    except xmlsafe.XmlError as exc:
        log.warning("skipping stored publication %s: %s", publication.etag, exc.reason)
        return None
    if root.tag != root_tag:
        log.warning("skipping stored publication %s: root %s", publication.etag, root.tag)
        return None
    return root


def merged_nsmap(roots: Sequence[etree._Element], default: str) -> dict[str | None, str]:
    """`default` as the default namespace plus the prefixes the sources declared on their
    roots, the newest source winning a prefix. Copied elements redeclare what they need
    anyway; this keeps prefixes used inside attribute values and text in scope."""
    nsmap: dict[str | None, str] = {None: default}
    for root in roots:
        for prefix, uri in root.nsmap.items():
            if prefix is not None and prefix not in nsmap:
                nsmap[prefix] = uri
    return nsmap


def serialize(root: etree._Element) -> bytes:
    return XML_DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False)
