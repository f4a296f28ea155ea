"""Presence authorization rules (RFC 5025 over RFC 4745 common-policy): evaluate and apply.

Pure functions over an already-parsed rules document: which rules match a watcher
(identity, sphere, validity), how their actions combine (the maximum sub-handling, as
RFC 4745 §10 says, not Kamailio's first match), and what the permitted transformations
leave of a PIDF document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import unquote

from lxml import etree

CP = "urn:ietf:params:xml:ns:common-policy"
PR = "urn:ietf:params:xml:ns:pres-rules"
OMA_PR = "urn:oma:xml:prs:pres-rules"
PIDF = "urn:ietf:params:xml:ns:pidf"
DM = "urn:ietf:params:xml:ns:pidf:data-model"
RPID = "urn:ietf:params:xml:ns:pidf:rpid"

# RFC 5025 §3.2.1: the values of sub-handling, in the order rules combine them.
SUB_HANDLING = {"block": 0, "confirm": 10, "polite-block": 20, "allow": 30}
HANDLING_BY_VALUE = {value: name for name, value in SUB_HANDLING.items()}

# provide-* elements that permit one person/tuple attribute (RFC 5025 §3.2.5+), and the
# elements of the document each of them lets through.
ATTRIBUTE_PERMISSIONS = {
    "provide-activities": [(RPID, "activities")],
    "provide-class": [(RPID, "class")],
    "provide-deviceID": [(DM, "deviceID")],
    "provide-mood": [(RPID, "mood")],
    "provide-place-is": [(RPID, "place-is")],
    "provide-place-type": [(RPID, "place-type")],
    "provide-privacy": [(RPID, "privacy")],
    "provide-relationship": [(RPID, "relationship")],
    "provide-status-icon": [(RPID, "status-icon")],
    "provide-sphere": [(RPID, "sphere")],
    "provide-time-offset": [(RPID, "time-offset")],
    "provide-user-input": [(RPID, "user-input")],
    "provide-note": [(PIDF, "note"), (DM, "note")],
}
# The skeleton of PIDF and the data model that is never withheld from an allowed watcher.
ALWAYS_KEPT = {
    (PIDF, "status"),
    (PIDF, "basic"),
    (PIDF, "contact"),
    (PIDF, "timestamp"),
    (DM, "timestamp"),
}


@dataclass(frozen=True)
class Selection:
    """Which tuples, persons or devices a provide-services/persons/devices permits."""

    everything: bool = False
    ids: frozenset[str] = frozenset()  # occurrence-id
    classes: frozenset[str] = frozenset()
    uris: frozenset[str] = frozenset()  # service-uri (tuple contact)
    schemes: frozenset[str] = frozenset()  # service-uri-scheme
    device_ids: frozenset[str] = frozenset()

    def union(self, other: Selection) -> Selection:
        return Selection(
            self.everything or other.everything,
            self.ids | other.ids,
            self.classes | other.classes,
            self.uris | other.uris,
            self.schemes | other.schemes,
            self.device_ids | other.device_ids,
        )


@dataclass(frozen=True)
class Permissions:
    """The combined transformations of the matching rules (RFC 4745 §10.2: union)."""

    services: Selection = Selection()
    persons: Selection = Selection()
    devices: Selection = Selection()
    attributes: frozenset[str] = frozenset()  # provide-* names that are on
    unknown: frozenset[tuple[str, str]] = frozenset()  # provide-unknown-attribute
    all_attributes: bool = False

    def union(self, other: Permissions) -> Permissions:
        return Permissions(
            self.services.union(other.services),
            self.persons.union(other.persons),
            self.devices.union(other.devices),
            self.attributes | other.attributes,
            self.unknown | other.unknown,
            self.all_attributes or other.all_attributes,
        )


@dataclass(frozen=True)
class Verdict:
    """The outcome for one watcher. `permissions` None: the full document (see `evaluate`)."""

    handling: str | None  # None: no rule matched
    permissions: Permissions | None = None
    matched: tuple[str, ...] = field(default=())

    @property
    def view_key(self) -> tuple:
        """Watchers with equal keys see the same body: compute it once for all of them."""
        return (self.handling, self.permissions)


def evaluate(
    ruleset: etree._Element | None,
    watcher: str,
    *,
    now: datetime | None = None,
    sphere: str | None = None,
) -> Verdict:
    """Match every rule against the watcher and combine what matched.

    Rules that carry no transformations at all give the full document: that is what
    deployments writing just `<sub-handling>allow</sub-handling>` expect (and Kamailio
    does). As soon as any matching rule has transformations, RFC 5025's defaults hold:
    only what some rule provides is shown.
    """
    if ruleset is None:
        return Verdict(None)
    now = now or datetime.now(UTC)
    handling: int | None = None
    permissions: Permissions | None = None
    matched = []
    for rule in ruleset.iterfind(f"{{{CP}}}rule"):
        if not _conditions_hold(rule.find(f"{{{CP}}}conditions"), watcher, now, sphere):
            continue
        matched.append(rule.get("id", ""))
        value = _sub_handling(rule)
        if value is not None:
            handling = value if handling is None else max(handling, value)
        transformations = rule.find(f"{{{CP}}}transformations")
        if transformations is not None:
            granted = _permissions(transformations)
            permissions = granted if permissions is None else permissions.union(granted)
    if not matched:
        return Verdict(None)
    name = HANDLING_BY_VALUE[handling] if handling is not None else "block"
    return Verdict(name, permissions, tuple(matched))


def _conditions_hold(conditions, watcher: str, now: datetime, sphere: str | None) -> bool:
    if conditions is None:
        return True
    for condition in conditions:
        if not isinstance(condition.tag, str):
            continue
        tag = etree.QName(condition)
        if tag.namespace != CP:
            return False  # a condition we do not understand never matches (RFC 4745 §10.1)
        if tag.localname == "identity" and not _identity_matches(condition, watcher):
            return False
        if tag.localname == "sphere" and not _sphere_matches(condition, sphere):
            return False
        if tag.localname == "validity" and not _valid_at(condition, now):
            return False
    return True


@lru_cache(maxsize=4096)  # every subscription decision compares the same few AORs
def normalize(uri: str) -> str:
    """Compare AORs as sip:user@host, case-insensitive host, user unescaped."""
    uri = uri.strip()
    if uri.startswith("sips:"):
        uri = "sip:" + uri[5:]
    scheme, _, rest = uri.partition(":")
    user, at, host = rest.partition("@")
    host = host.split(";")[0].split(">")[0]
    return f"{scheme.lower()}:{unquote(user)}@{host.lower()}" if at else uri.lower()


def _domain(uri: str) -> str:
    return normalize(uri).rpartition("@")[2]


def _identity_matches(identity, watcher: str) -> bool:
    watcher = normalize(watcher)
    for child in identity:
        if child.tag == f"{{{CP}}}one" and normalize(child.get("id", "")) == watcher:
            return True
        if child.tag == f"{{{CP}}}many" and _many_matches(child, watcher):
            return True
    return False


def _many_matches(many, watcher: str) -> bool:
    domain = many.get("domain")
    if domain is not None and domain.lower() != _domain(watcher):
        return False
    for exception in many.iterfind(f"{{{CP}}}except"):
        if exception.get("id") is not None and normalize(exception.get("id")) == watcher:
            return False
        if exception.get("domain") is not None and exception.get("domain").lower() == _domain(
            watcher
        ):
            return False
    return True


def _sphere_matches(condition, sphere: str | None) -> bool:
    wanted = set((condition.get("value") or "").split())
    return sphere is not None and sphere in wanted


def _valid_at(validity, now: datetime) -> bool:
    starts = [_datetime(e.text) for e in validity.iterfind(f"{{{CP}}}from")]
    ends = [_datetime(e.text) for e in validity.iterfind(f"{{{CP}}}until")]
    return any(
        start is not None and end is not None and start <= now < end
        for start, end in zip(starts, ends, strict=False)
    )


def _datetime(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _sub_handling(rule) -> int | None:
    for namespace in (PR, OMA_PR):
        element = rule.find(f"{{{CP}}}actions/{{{namespace}}}sub-handling")
        if element is not None:
            return SUB_HANDLING.get((element.text or "").strip())
    return None


def _permissions(transformations) -> Permissions:
    services = persons = devices = Selection()
    attributes: set[str] = set()
    unknown: set[tuple[str, str]] = set()
    all_attributes = False
    for element in transformations:
        if not isinstance(element.tag, str) or etree.QName(element).namespace not in (PR, OMA_PR):
            continue
        name = etree.QName(element).localname
        if name == "provide-services":
            services = services.union(_selection(element, "all-services"))
        elif name == "provide-persons":
            persons = persons.union(_selection(element, "all-persons"))
        elif name == "provide-devices":
            devices = devices.union(_selection(element, "all-devices"))
        elif name == "provide-all-attributes":
            all_attributes = True
        elif name == "provide-unknown-attribute":
            unknown.add((element.get("ns", ""), element.get("name", "")))
        elif name in ATTRIBUTE_PERMISSIONS and _granted(element):
            attributes.add(name)
    return Permissions(
        services, persons, devices, frozenset(attributes), frozenset(unknown), all_attributes
    )


def _granted(element) -> bool:
    # Boolean permissions say true/false; provide-user-input says false/bare/thresholds/full.
    return (element.text or "").strip().lower() not in ("false", "")


def _selection(element, all_name: str) -> Selection:
    def texts(name: str) -> frozenset[str]:
        return frozenset(
            (e.text or "").strip() for e in element if etree.QName(e).localname == name
        )

    everything = any(
        etree.QName(e).localname == all_name for e in element if isinstance(e.tag, str)
    )
    return Selection(
        everything,
        texts("occurrence-id"),
        texts("class"),
        texts("service-uri"),
        frozenset(s.lower() for s in texts("service-uri-scheme")),
        texts("deviceID"),
    )


def current_sphere(presence: etree._Element) -> str | None:
    """The presentity's sphere (RPID), which a rule's sphere condition compares with."""
    sphere = presence.find(f".//{{{RPID}}}sphere")
    if sphere is None:
        return None
    values = [etree.QName(e).localname for e in sphere if isinstance(e.tag, str)]
    return values[0] if values else (sphere.text or "").strip() or None


def apply(permissions: Permissions, presence: etree._Element) -> etree._Element:
    """Remove from a PIDF document (a copy) what the permissions do not provide."""
    for element in list(presence):
        if not isinstance(element.tag, str):
            continue
        qname = etree.QName(element)
        if qname.namespace == PIDF and qname.localname == "tuple":
            keep = _selected(permissions.services, element, _tuple_facts(element))
        elif qname.namespace == DM and qname.localname == "person":
            keep = _selected(permissions.persons, element, {})
        elif qname.namespace == DM and qname.localname == "device":
            keep = _selected(permissions.devices, element, _device_facts(element))
        else:
            keep = _attribute_allowed(permissions, qname)
        if not keep:
            presence.remove(element)
        elif qname.localname in ("tuple", "person", "device"):
            _strip_attributes(permissions, element)
    return presence


def _selected(selection: Selection, element, facts: dict) -> bool:
    if selection.everything:
        return True
    rpid_class = element.findtext(f"{{{RPID}}}class")
    return (
        element.get("id") in selection.ids
        or (rpid_class is not None and rpid_class.strip() in selection.classes)
        or facts.get("uri") in selection.uris
        or facts.get("scheme") in selection.schemes
        or bool(facts.get("device_ids", set()) & selection.device_ids)
    )


def _tuple_facts(element) -> dict:
    contact = (element.findtext(f"{{{PIDF}}}contact") or "").strip()
    return {"uri": contact, "scheme": contact.partition(":")[0].lower() if contact else None}


def _device_facts(element) -> dict:
    return {"device_ids": {(e.text or "").strip() for e in element.iterfind(f"{{{DM}}}deviceID")}}


def _strip_attributes(permissions: Permissions, element) -> None:
    for child in list(element):
        if not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        if (qname.namespace, qname.localname) in ALWAYS_KEPT:
            continue
        if not _attribute_allowed(permissions, qname):
            element.remove(child)
        elif qname.localname == "status":
            _strip_attributes(permissions, child)  # RPID inside <status> too


def _attribute_allowed(permissions: Permissions, qname: etree.QName) -> bool:
    if permissions.all_attributes or (qname.namespace, qname.localname) in ALWAYS_KEPT:
        return True
    for name in permissions.attributes:
        if (qname.namespace, qname.localname) in ATTRIBUTE_PERMISSIONS[name]:
            return True
    return (qname.namespace or "", qname.localname) in permissions.unknown
