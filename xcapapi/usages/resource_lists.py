"""resource-lists (RFC 4826 §3): a user's buddy lists, the document `index` by convention.

Constraints the schema cannot say (§3.4.5): within one list, names of sub-lists, entry URIs,
entry-ref references and external anchors are each unique; an entry-ref points by a
relative URI into this XCAP root and an external list by an absolute HTTP URI.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import ConstraintFailure, Exists, UniquenessFailure
from ..selectors import element_children, element_path, encode_selector
from .base import ApplicationUsage

RESOURCE_LISTS = "urn:ietf:params:xml:ns:resource-lists"
LIST = f"{{{RESOURCE_LISTS}}}list"
# Child element -> the attribute that must be unique among its siblings.
_UNIQUE_IN_LIST = {
    LIST: "name",
    f"{{{RESOURCE_LISTS}}}entry": "uri",
    f"{{{RESOURCE_LISTS}}}entry-ref": "ref",
    f"{{{RESOURCE_LISTS}}}external": "anchor",
}


def field_of(element, attribute: str, default_namespace: str | None) -> str:
    """The `field` of an <exists> report: a relative URI selecting the attribute."""
    path, bindings = element_path(element, default_namespace)
    return encode_selector(f"{path}/@{attribute}", bindings)


def _alternatives(taken: set[str], value: str, count: int = 3) -> tuple[str, ...]:
    found, n = [], 2
    while len(found) < count:
        candidate = f"{value}-{n}"
        if candidate not in taken:
            found.append(candidate)
        n += 1
    return tuple(found)


def check_lists(containers, default_namespace: str | None) -> None:
    """Check the §3.4.5 constraints inside each element of `containers` (lists, roots)."""
    exists: list[Exists] = []
    for container in containers:
        seen: dict[tuple[str, str], object] = {}
        for child in element_children(container):
            attribute = _UNIQUE_IN_LIST.get(child.tag)
            value = child.get(attribute) if attribute else None
            if value is None:
                continue
            if (child.tag, value) in seen:
                alts = ()
                if child.tag == LIST:
                    taken = {el.get("name") for el in element_children(container)}
                    alts = _alternatives(taken, value)
                exists.append(Exists(field_of(child, attribute, default_namespace), alts))
            seen[(child.tag, value)] = child
            if attribute == "ref" and urlsplit(value).scheme:
                raise ConstraintFailure(f"entry-ref {value!r} must be a relative URI")
            if attribute == "anchor" and urlsplit(value).scheme.lower() not in ("http", "https"):
                raise ConstraintFailure(f"external anchor {value!r} must be an absolute HTTP URI")
    if exists:
        raise UniquenessFailure(exists)


class ResourceLists(ApplicationUsage):
    auid = "resource-lists"
    mime_type = "application/resource-lists+xml"
    default_namespace = RESOURCE_LISTS
    schema_file = "resource-lists.xsd"
    namespaces = (RESOURCE_LISTS,)
    doc_type = 4
    description = "buddy lists (RFC 4826)"

    def check_constraints(self, root, *, xui, name) -> None:
        check_lists([root, *root.iter(LIST)], self.default_namespace)
