"""The presence event package (RFC 3856) with PIDF bodies (RFC 3863).

Publications are PIDF documents. The PIDF core (presence, tuple, status, basic, contact,
note, timestamp) is checked; everything in another namespace -- RPID (RFC 4480), the
data model's person and device (RFC 4479), capabilities (RFC 5196) -- passes through
untouched. The state a watcher sees is the composition of all live publications of the
presentity: one PIDF document holding every device's tuples.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Literal

from lxml import etree

from sipws import xmlsafe
from sipws.event_packages import xmldoc
from sipws.event_packages.base import BadBody, EventPackage, Publication, register

__all__ = ["DM_NS", "PIDF_NS", "RPID_NS", "PresencePackage", "presence"]

PIDF_NS = "urn:ietf:params:xml:ns:pidf"
DM_NS = "urn:ietf:params:xml:ns:pidf:data-model"
RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid"

_PRESENCE = f"{{{PIDF_NS}}}presence"
_TUPLE = f"{{{PIDF_NS}}}tuple"
_STATUS = f"{{{PIDF_NS}}}status"
_BASIC = f"{{{PIDF_NS}}}basic"
_NOTE = f"{{{PIDF_NS}}}note"
_PERSON = f"{{{DM_NS}}}person"
_DEVICE = f"{{{DM_NS}}}device"

# The PIDF core as RFC 3863 section 4 describes it, with two deliberate relaxations so
# that real user agents are not refused: children of <presence>, <tuple> and <status>
# may come in any order (the cardinality RFC 3863 requires of <status> is checked in
# code), and a tuple id need not be an XML NCName (numeric ids are common).
_PIDF_XSD = b"""\
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:p="urn:ietf:params:xml:ns:pidf"
           targetNamespace="urn:ietf:params:xml:ns:pidf"
           elementFormDefault="qualified">
  <xs:element name="presence">
    <xs:complexType>
      <xs:choice minOccurs="0" maxOccurs="unbounded">
        <xs:element name="tuple" type="p:tupleType"/>
        <xs:element name="note" type="p:noteType"/>
        <xs:any namespace="##other" processContents="lax"/>
      </xs:choice>
      <xs:attribute name="entity" type="xs:anyURI" use="required"/>
      <xs:anyAttribute namespace="##other" processContents="lax"/>
    </xs:complexType>
  </xs:element>
  <xs:complexType name="tupleType">
    <xs:choice maxOccurs="unbounded">
      <xs:element name="status" type="p:statusType"/>
      <xs:element name="contact" type="p:contactType"/>
      <xs:element name="note" type="p:noteType"/>
      <xs:element name="timestamp" type="xs:dateTime"/>
      <xs:any namespace="##other" processContents="lax"/>
    </xs:choice>
    <xs:attribute name="id" type="xs:token" use="required"/>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>
  <xs:complexType name="statusType">
    <xs:choice minOccurs="0" maxOccurs="unbounded">
      <xs:element name="basic" type="p:basicType"/>
      <xs:any namespace="##other" processContents="lax"/>
    </xs:choice>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>
  <xs:simpleType name="basicType">
    <xs:restriction base="xs:token">
      <xs:enumeration value="open"/>
      <xs:enumeration value="closed"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:complexType name="contactType">
    <xs:simpleContent>
      <xs:extension base="xs:anyURI">
        <xs:attribute name="priority" type="p:priorityType"/>
        <xs:anyAttribute namespace="##other" processContents="lax"/>
      </xs:extension>
    </xs:simpleContent>
  </xs:complexType>
  <xs:simpleType name="priorityType">
    <xs:restriction base="xs:decimal">
      <xs:minInclusive value="0"/>
      <xs:maxInclusive value="1"/>
      <xs:fractionDigits value="3"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:complexType name="noteType">
    <xs:simpleContent>
      <xs:extension base="xs:string">
        <xs:anyAttribute namespace="##other" processContents="lax"/>
      </xs:extension>
    </xs:simpleContent>
  </xs:complexType>
</xs:schema>
"""

_SCHEMA = xmldoc.Schema(_PIDF_XSD)


def _check_pidf(root: etree._Element) -> None:
    """Raise `BadBody` (400) unless `root` is a PIDF document."""
    if root.tag != _PRESENCE:
        raise BadBody(400, "Not a PIDF document", f"root element {root.tag}")
    if not (root.get("entity") or "").strip():
        raise BadBody(400, "PIDF presence without entity")
    seen: set[str] = set()
    for tup in root.iterchildren(_TUPLE):
        tuple_id = (tup.get("id") or "").strip()
        if not tuple_id:
            raise BadBody(400, "PIDF tuple without id")
        if tuple_id in seen:
            raise BadBody(400, "PIDF tuple id not unique", tuple_id)
        seen.add(tuple_id)
        statuses = sum(1 for _ in tup.iterchildren(_STATUS))
        if statuses != 1:
            many = "PIDF tuple with more than one status"
            raise BadBody(400, many if statuses else "PIDF tuple without status", tuple_id)
    detail = _SCHEMA.error(root)
    if detail is not None:
        element, _ = xmldoc.Schema.culprit(detail)
        reason = f"Invalid PIDF {element}" if element else "Invalid PIDF document"
        raise BadBody(400, reason, detail)


class PresencePackage(EventPackage):
    """RFC 3856 presence: PIDF publications, composed per presentity."""

    name = "presence"
    content_types = ("application/pidf+xml",)

    def __init__(
        self, *, neutral: Literal["none", "closed"] = "none", max_bytes: int = 64 * 1024
    ) -> None:
        """`neutral` is what a watcher gets while nothing is published: "none" sends
        a NOTIFY without body (as Kamailio does), "closed" a PIDF with one closed tuple.
        `max_bytes` bounds an accepted publication."""
        if neutral not in ("none", "closed"):
            raise ValueError(f"neutral must be 'none' or 'closed', not {neutral!r}")
        self.neutral = neutral
        self.max_bytes = max_bytes

    def validate(self, body: bytes, content_type: str) -> None:
        super().validate(body, content_type)
        try:
            root = xmlsafe.parse(body, max_bytes=self.max_bytes)
        except xmlsafe.XmlError as exc:
            raise BadBody(400, exc.reason, exc.detail) from None
        _check_pidf(root)

    def aggregate(self, presentity_uri: str, publications: Sequence[Publication]) -> bytes | None:
        """Compose the presentity's publications (newest first) into one PIDF document.

        Tuples are merged by id, the newest publication winning a shared id, in
        newest-first order; person and device elements likewise by id; the top-level
        notes come from the newest publication that has any; other top-level
        extensions are kept from all. A single publication is returned as published.
        """
        if not publications:
            return None
        if len(publications) == 1:
            return publications[0].body
        roots = []
        for publication in publications:
            root = xmldoc.stored_root(publication, _PRESENCE)
            if root is not None:
                roots.append(root)
        if not roots:
            return None

        tuples: dict[str, etree._Element] = {}
        components: dict[tuple[str, str], etree._Element] = {}
        extensions: dict[bytes, etree._Element] = {}
        notes: list[etree._Element] = []
        unnamed: list[etree._Element] = []
        for root in roots:
            root_notes = []
            for child in root:
                if not isinstance(child.tag, str):
                    continue  # comments and processing instructions
                if child.tag == _TUPLE:
                    tuples.setdefault(child.get("id", ""), child)
                elif child.tag == _NOTE:
                    root_notes.append(child)
                elif child.tag in (_PERSON, _DEVICE):
                    element_id = child.get("id")
                    if element_id is None:
                        unnamed.append(child)
                    else:
                        components.setdefault((child.tag, element_id), child)
                else:
                    extensions.setdefault(etree.tostring(child, with_tail=False), child)
            if root_notes and not notes:
                notes = root_notes

        out = etree.Element(_PRESENCE, nsmap=xmldoc.merged_nsmap(roots, PIDF_NS))
        out.set("entity", presentity_uri)
        out.text = "\n"
        # RFC 3863 orders the children: tuples, then notes, then extensions.
        for element in [
            *tuples.values(),
            *notes,
            *components.values(),
            *unnamed,
            *extensions.values(),
        ]:
            clone = copy.deepcopy(element)
            clone.tail = "\n"
            out.append(clone)
        return xmldoc.serialize(out)

    def neutral_body(self, presentity_uri: str) -> bytes | None:
        if self.neutral == "none":
            return None
        root = etree.Element(_PRESENCE, nsmap={None: PIDF_NS})
        root.set("entity", presentity_uri)
        tup = etree.SubElement(root, _TUPLE, id="offline")
        etree.SubElement(etree.SubElement(tup, _STATUS), _BASIC).text = "closed"
        return xmldoc.serialize(root)


presence = register(PresencePackage())
