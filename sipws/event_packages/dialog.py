"""The dialog event package (RFC 4235) and shared line appearances (dialog;sla, BLA).

Publications are dialog-info documents. A watcher sees one full-state document per
presentity holding the dialogs of every live publication, merged by dialog id:

- Across publications the dialog that is furthest along the RFC 4235 state machine
  (trying < proceeding < early < confirmed < terminated) wins, and among equals the
  newest publication's copy. Two sources of one dialog (two devices, a proxy and a
  phone) are not ordered by arrival, but the state machine only moves forward, so the
  furthest state is the latest truth and a late `early` never revives a `terminated`.
- Within one publication (a modify, or a device re-publishing without SIP-If-Match)
  the new body replaces the old, as the device knows best, except that a dialog the
  old body had terminated stays terminated (`successor`), and a `partial` body only
  updates the dialogs it names.

Watchers get `version` rewritten per subscription (0, 1, 2, ...). Nothing published is
a dialog-info without dialogs, which is how RFC 4235 shows an idle entity; settings
reduce a notification to its one most interesting dialog, or put a terminated dummy
dialog where there would be none, for phones that cannot take anything else.

`dialog;sla` (draft-anil-sipping-bla, later RFC 7463) is the same format about a
shared line: its members publish their dialogs on the line's AOR, each dialog may
carry the line appearance it uses (`<sa:appearance>`), and members watch the line
without being told of their own publications.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence

from lxml import etree

from sipws import xmlsafe
from sipws.event_packages import xmldoc
from sipws.event_packages.base import BadBody, EventPackage, Publication

__all__ = [
    "DIALOG_NS",
    "SA_NS",
    "STATES",
    "DialogPackage",
    "SharedLineDialogPackage",
    "parse_groups",
]

DIALOG_NS = "urn:ietf:params:xml:ns:dialog-info"
SA_NS = "urn:ietf:params:xml:ns:sa-dialog-info"

_DIALOG_INFO = f"{{{DIALOG_NS}}}dialog-info"
_DIALOG = f"{{{DIALOG_NS}}}dialog"
_STATE = f"{{{DIALOG_NS}}}state"
_APPEARANCE = f"{{{SA_NS}}}appearance"

#: The dialog states in the order the RFC 4235 state machine (§3.7.1) passes them.
STATES = ("trying", "proceeding", "early", "confirmed", "terminated")
_PROGRESS = {state: rank for rank, state in enumerate(STATES)}
# The one dialog a single-dialog notification keeps: a call in progress says most
# about the line (the lamp is busy), then one ringing, one being set up, and an ended
# one last. Ties go to the newest publication.
_INTEREST = {"confirmed": 4, "early": 3, "proceeding": 2, "trying": 1, "terminated": 0}

DUMMY_ID = "idle"

# The dialog-info format as RFC 4235 section 4 defines it, with two relaxations so that
# real publishers are not refused: the children of <dialog-info>, <dialog>, <local> and
# <remote> may come in any order (shared-appearance phones put <sa:appearance> before
# <state>; the one-<state> rule is checked in code), and attributes from other
# namespaces are allowed on the root and on dialogs.
_DIALOG_INFO_XSD = b"""\
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:d="urn:ietf:params:xml:ns:dialog-info"
           targetNamespace="urn:ietf:params:xml:ns:dialog-info"
           elementFormDefault="qualified">
  <xs:element name="dialog-info">
    <xs:complexType>
      <xs:choice minOccurs="0" maxOccurs="unbounded">
        <xs:element name="dialog" type="d:dialogType"/>
        <xs:any namespace="##other" processContents="lax"/>
      </xs:choice>
      <xs:attribute name="version" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="state" type="d:documentState" use="required"/>
      <xs:attribute name="entity" type="xs:anyURI" use="required"/>
      <xs:anyAttribute namespace="##other" processContents="lax"/>
    </xs:complexType>
  </xs:element>
  <xs:simpleType name="documentState">
    <xs:restriction base="xs:token">
      <xs:enumeration value="full"/>
      <xs:enumeration value="partial"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:complexType name="dialogType">
    <xs:choice maxOccurs="unbounded">
      <xs:element name="state" type="d:stateType"/>
      <xs:element name="duration" type="xs:nonNegativeInteger"/>
      <xs:element name="replaces">
        <xs:complexType>
          <xs:attribute name="call-id" type="xs:string" use="required"/>
          <xs:attribute name="local-tag" type="xs:string" use="required"/>
          <xs:attribute name="remote-tag" type="xs:string" use="required"/>
        </xs:complexType>
      </xs:element>
      <xs:element name="referred-by" type="d:nameaddr"/>
      <xs:element name="route-set">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="hop" type="xs:string" maxOccurs="unbounded"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
      <xs:element name="local" type="d:participant"/>
      <xs:element name="remote" type="d:participant"/>
      <xs:any namespace="##other" processContents="lax"/>
    </xs:choice>
    <xs:attribute name="id" type="xs:string" use="required"/>
    <xs:attribute name="call-id" type="xs:string"/>
    <xs:attribute name="local-tag" type="xs:string"/>
    <xs:attribute name="remote-tag" type="xs:string"/>
    <xs:attribute name="direction">
      <xs:simpleType>
        <xs:restriction base="xs:token">
          <xs:enumeration value="initiator"/>
          <xs:enumeration value="recipient"/>
        </xs:restriction>
      </xs:simpleType>
    </xs:attribute>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:complexType>
  <xs:complexType name="stateType">
    <xs:simpleContent>
      <xs:extension base="d:stateValue">
        <xs:attribute name="event">
          <xs:simpleType>
            <xs:restriction base="xs:token">
              <xs:enumeration value="cancelled"/>
              <xs:enumeration value="rejected"/>
              <xs:enumeration value="replaced"/>
              <xs:enumeration value="local-bye"/>
              <xs:enumeration value="remote-bye"/>
              <xs:enumeration value="error"/>
              <xs:enumeration value="timeout"/>
            </xs:restriction>
          </xs:simpleType>
        </xs:attribute>
        <xs:attribute name="code">
          <xs:simpleType>
            <xs:restriction base="xs:positiveInteger">
              <xs:minInclusive value="100"/>
              <xs:maxInclusive value="699"/>
            </xs:restriction>
          </xs:simpleType>
        </xs:attribute>
      </xs:extension>
    </xs:simpleContent>
  </xs:complexType>
  <xs:simpleType name="stateValue">
    <xs:restriction base="xs:token">
      <xs:enumeration value="trying"/>
      <xs:enumeration value="proceeding"/>
      <xs:enumeration value="early"/>
      <xs:enumeration value="confirmed"/>
      <xs:enumeration value="terminated"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:complexType name="participant">
    <xs:choice minOccurs="0" maxOccurs="unbounded">
      <xs:element name="identity" type="d:nameaddr"/>
      <xs:element name="target">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="param" minOccurs="0" maxOccurs="unbounded">
              <xs:complexType>
                <xs:attribute name="pname" type="xs:string" use="required"/>
                <xs:attribute name="pval" type="xs:string" use="required"/>
              </xs:complexType>
            </xs:element>
          </xs:sequence>
          <xs:attribute name="uri" type="xs:string" use="required"/>
        </xs:complexType>
      </xs:element>
      <xs:element name="session-description">
        <xs:complexType>
          <xs:simpleContent>
            <xs:extension base="xs:string">
              <xs:attribute name="type" type="xs:string" use="required"/>
            </xs:extension>
          </xs:simpleContent>
        </xs:complexType>
      </xs:element>
      <xs:element name="cseq" type="xs:nonNegativeInteger"/>
      <xs:any namespace="##other" processContents="lax"/>
    </xs:choice>
  </xs:complexType>
  <xs:complexType name="nameaddr">
    <xs:simpleContent>
      <xs:extension base="xs:anyURI">
        <xs:attribute name="display" type="xs:string"/>
      </xs:extension>
    </xs:simpleContent>
  </xs:complexType>
</xs:schema>
"""

_SCHEMA = xmldoc.Schema(_DIALOG_INFO_XSD)
# The root start tag's version attribute, in documents this module serialized (lxml
# escapes ">" inside attribute values, so the tag ends at the first ">").
_ROOT_VERSION = re.compile(rb'(<dialog-info\b[^>]*?\sversion=")\d+(")')


def _state(dialog: etree._Element) -> str:
    return (dialog.findtext(_STATE) or "").strip()


def _ended(dialog: etree._Element) -> bool:
    return _state(dialog) == "terminated"


def _check_dialog_info(root: etree._Element) -> None:
    """Raise `BadBody` (400) unless `root` is a dialog-info document."""
    if root.tag != _DIALOG_INFO:
        raise BadBody(400, "Not a dialog-info document", f"root element {root.tag}")
    if not (root.get("entity") or "").strip():
        raise BadBody(400, "dialog-info without entity")
    seen: set[str] = set()
    for dialog in root.iterchildren(_DIALOG):
        dialog_id = dialog.get("id") or ""
        if not dialog_id.strip():
            raise BadBody(400, "dialog without id")
        if dialog_id in seen:
            raise BadBody(400, "dialog id not unique", dialog_id)
        seen.add(dialog_id)
        states = sum(1 for _ in dialog.iterchildren(_STATE))
        if states != 1:
            many = "dialog with more than one state"
            raise BadBody(400, many if states else "dialog without state", dialog_id)
    detail = _SCHEMA.error(root)
    if detail is not None:
        # "Invalid dialog-info state code": the root's own name goes without saying.
        element, attribute = xmldoc.Schema.culprit(detail)
        named = [name for name in (element, attribute) if name and name != "dialog-info"]
        raise BadBody(400, " ".join(["Invalid dialog-info", *named]), detail)


class DialogPackage(EventPackage):
    """RFC 4235 dialog state: dialog-info publications, merged per presentity by dialog id."""

    name = "dialog"
    content_types = ("application/dialog-info+xml",)
    versioned = True

    def __init__(
        self, *, force_single: bool = False, force_dummy: bool = False, max_bytes: int = 64 * 1024
    ) -> None:
        """`force_single` keeps only the most interesting dialog in each notification
        (Kamailio's force_single_dialog); `force_dummy` puts a terminated dummy dialog
        in a notification that would have none (force_dummy_dialog). `max_bytes`
        bounds an accepted publication."""
        self.force_single = force_single
        self.force_dummy = force_dummy
        self.max_bytes = max_bytes

    def validate(self, body: bytes, content_type: str) -> None:
        super().validate(body, content_type)
        try:
            root = xmlsafe.parse(body, max_bytes=self.max_bytes)
        except xmlsafe.XmlError as exc:
            raise BadBody(400, exc.reason, exc.detail) from None
        _check_dialog_info(root)
        self._check_extensions(root)

    def _check_extensions(self, root: etree._Element) -> None:
        """Checks a subclass adds for its own elements."""

    def aggregate(self, presentity_uri: str, publications: Sequence[Publication]) -> bytes | None:
        """One full-state dialog-info of the live publications (newest first).

        Dialogs are merged by id, the furthest state winning and the newest copy
        among equals; they keep the order in which the newest publications list them.
        Top-level extensions are kept from all publications.
        """
        roots = [xmldoc.stored_root(publication, _DIALOG_INFO) for publication in publications]
        roots = [root for root in roots if root is not None]
        dialogs: dict[str, etree._Element] = {}
        appearances: dict[str, etree._Element] = {}
        extensions: dict[bytes, etree._Element] = {}
        for root in roots:
            for child in root:
                if not isinstance(child.tag, str):
                    continue  # comments and processing instructions
                if child.tag != _DIALOG:
                    extensions.setdefault(etree.tostring(child, with_tail=False), child)
                    continue
                dialog_id = child.get("id", "")
                held = dialogs.get(dialog_id)
                if held is None or _PROGRESS.get(_state(child), 0) > _PROGRESS.get(_state(held), 0):
                    dialogs[dialog_id] = child
                appearance = child.find(_APPEARANCE)
                if appearance is not None:
                    appearances.setdefault(dialog_id, appearance)
        chosen = list(dialogs.items())
        if self.force_single and chosen:
            chosen = [max(chosen, key=lambda item: _INTEREST.get(_state(item[1]), 0))]
        out = _document(presentity_uri, xmldoc.merged_nsmap(roots, DIALOG_NS))
        for dialog_id, dialog in chosen:
            clone = copy.deepcopy(dialog)
            # The line appearance a dialog was given stays with it, even when the copy
            # that won (an ended dialog, say) no longer names it.
            if clone.find(_APPEARANCE) is None and dialog_id in appearances:
                clone.insert(0, copy.deepcopy(appearances[dialog_id]))
            _append(out, clone)
        if not chosen and self.force_dummy:
            _append(out, _dummy())
        for extension in extensions.values():
            _append(out, copy.deepcopy(extension))
        return xmldoc.serialize(out)

    def neutral_body(self, presentity_uri: str) -> bytes | None:
        """An idle entity: a dialog-info without dialogs (RFC 4235 §4.1), or with the
        terminated dummy dialog when `force_dummy` is set."""
        out = _document(presentity_uri, {None: DIALOG_NS})
        if self.force_dummy:
            _append(out, _dummy())
        return xmldoc.serialize(out)

    def with_version(self, body: bytes, version: int) -> bytes:
        """The document with its root `version` attribute set to `version`."""
        stamped, found = _ROOT_VERSION.subn(
            lambda match: match.group(1) + str(version).encode() + match.group(2), body, count=1
        )
        if found:
            return stamped
        # Not a document of ours (a view rewrote it): take the slow, sure way.
        root = xmlsafe.parse(body, max_bytes=len(body))
        root.set("version", str(version))
        return xmldoc.serialize(root)

    def successor(self, previous: bytes, body: bytes) -> bytes:
        """What one publication holds after `body` replaces `previous` in it.

        A dialog `previous` reported terminated stays terminated (a late update of an
        ended call is ignored, as Kamailio does), a dialog keeps the line appearance it
        had when the update leaves it out, and a `state="partial"` body updates the
        dialogs it names while keeping the others (RFC 4235 §4.1).
        """
        old = xmldoc.stored_root(Publication(previous, "", "previous", 0), _DIALOG_INFO)
        if old is None:
            return body
        new = xmlsafe.parse(body, max_bytes=len(body))  # validated before it gets here
        before = {dialog.get("id", ""): dialog for dialog in old.iterchildren(_DIALOG)}
        changed = False
        for dialog in list(new.iterchildren(_DIALOG)):
            earlier = before.get(dialog.get("id", ""))
            if earlier is None:
                continue
            if _ended(earlier) and not _ended(dialog):
                replacement = copy.deepcopy(earlier)
                replacement.tail = dialog.tail
                new.replace(dialog, replacement)
                changed = True
            elif dialog.find(_APPEARANCE) is None and earlier.find(_APPEARANCE) is not None:
                dialog.insert(0, copy.deepcopy(earlier.find(_APPEARANCE)))
                changed = True
        if new.get("state") == "partial":
            named = {dialog.get("id", "") for dialog in new.iterchildren(_DIALOG)}
            kept = [d for dialog_id, d in before.items() if dialog_id not in named]
            for position, dialog in enumerate(kept):
                new.insert(position, copy.deepcopy(dialog))
            new.set("state", "full")
            changed = True
        return xmldoc.serialize(new) if changed else body


class SharedLineDialogPackage(DialogPackage):
    """dialog;sla: dialog state of a shared line, published and watched by its members.

    `groups` maps a line's AOR to the AORs of its members. A member, or the line's own
    account, may publish on the line and watch it; everyone else gets 403. A watcher
    is never sent what it published itself (the engine leaves it out per watcher).
    """

    name = "dialog;sla"
    excludes_own = True

    def __init__(self, *, groups: Mapping[str, Iterable[str]] | None = None, **options) -> None:
        super().__init__(**options)
        self.groups = {
            _aor(line): frozenset(map(_aor, members)) for line, members in (groups or {}).items()
        }

    def is_member(self, user: str, line: str) -> bool:
        """Whether `user` may publish on and watch the shared `line`."""
        return user == line or user in self.groups.get(line, ())

    def _check_extensions(self, root: etree._Element) -> None:
        for dialog in root.iterchildren(_DIALOG):
            appearances = dialog.findall(_APPEARANCE)
            if len(appearances) > 1:
                raise BadBody(400, "dialog with more than one appearance", dialog.get("id"))
            if appearances and not (appearances[0].text or "").strip().isdigit():
                raise BadBody(400, "Invalid dialog-info appearance", appearances[0].text or "")


def parse_groups(text: str) -> dict[str, frozenset[str]]:
    """Shared lines from a setting: "line@dom=member@dom,member@dom; line2@dom=...".

    Raises ValueError on a group without "=" or without members.
    """
    groups: dict[str, frozenset[str]] = {}
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        line, equals, members = entry.partition("=")
        listed = [member.strip() for member in members.split(",") if member.strip()]
        if not equals or not line.strip() or not listed:
            raise ValueError(f"bad shared line group {entry!r}: want line=member,member")
        groups[_aor(line)] = frozenset(map(_aor, listed))
    return groups


def _aor(text: str) -> str:
    """sip:user@domain as the engine spells AORs: the domain in lower case."""
    user, _, domain = text.strip().removeprefix("sip:").rpartition("@")
    return f"sip:{user}@{domain.lower()}"


def _document(entity: str, nsmap: dict[str | None, str]) -> etree._Element:
    root = etree.Element(_DIALOG_INFO, nsmap=nsmap)
    # The version is a placeholder each watcher's NOTIFY rewrites (with_version).
    root.set("version", "0")
    root.set("state", "full")
    root.set("entity", entity)
    root.text = "\n"
    return root


def _append(root: etree._Element, element: etree._Element) -> None:
    element.tail = "\n"
    root.append(element)


def _dummy() -> etree._Element:
    dialog = etree.Element(_DIALOG, id=DUMMY_ID, direction="recipient")
    etree.SubElement(dialog, _STATE).text = "terminated"
    return dialog
