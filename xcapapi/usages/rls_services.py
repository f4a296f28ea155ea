"""rls-services (RFC 4826 §4): service URIs that a resource list server answers for.

Each <service uri> must be unique across the server, not only within one document (§4.3):
a clash is a 409 uniqueness-failure that suggests free URIs. Lists given in place follow
the resource-lists constraints; a <resource-list> reference is an absolute HTTP URI. The
global document `index` is the union of every user's services (§4.5), built on each read.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from lxml import etree

from sipws import xmlsafe

from ..errors import ConstraintFailure, Exists, UniquenessFailure
from .base import ApplicationUsage
from .resource_lists import LIST, RESOURCE_LISTS, check_lists, field_of

RLS_SERVICES = "urn:ietf:params:xml:ns:rls-services"
SERVICE = f"{{{RLS_SERVICES}}}service"


def _alternatives(uri: str, taken: set[str], count: int = 3) -> tuple[str, ...]:
    """Free URIs like the one asked for: sip:friends@example.com -> sip:friends-2@..."""
    user, at, host = uri.partition("@")
    found, n = [], 2
    while len(found) < count:
        candidate = f"{user}-{n}{at}{host}"
        if candidate not in taken:
            found.append(candidate)
        n += 1
    return tuple(found)


class RlsServices(ApplicationUsage):
    auid = "rls-services"
    mime_type = "application/rls-services+xml"
    default_namespace = RLS_SERVICES
    schema_file = "rls-services.xsd"
    namespaces = (RLS_SERVICES, RESOURCE_LISTS)
    doc_type = 8
    description = "resource list server services (RFC 4826)"

    def _stored_documents(self, *, exclude: tuple[str | None, str] | None = None):
        from ..models import XcapDocument

        rows = XcapDocument.objects.filter(auid=self.auid)
        if exclude is not None:
            rows = rows.exclude(xui=exclude[0], name=exclude[1])
        for xui, name, body in rows.values_list("xui", "name", "body"):
            try:
                yield xui, name, xmlsafe.parse(bytes(body), max_bytes=len(body) + 1)
            except xmlsafe.XmlError:
                continue  # validated when stored; a broken row must not block others

    def check_constraints(self, root, *, xui, name) -> None:
        lists = [*root.iter(f"{{{RLS_SERVICES}}}list"), *root.iter(LIST)]
        check_lists(lists, self.default_namespace)
        for element in root.iter(f"{{{RLS_SERVICES}}}resource-list"):
            parts = urlsplit((element.text or "").strip())
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                raise ConstraintFailure("<resource-list> must hold an absolute HTTP URI")
        elsewhere = {
            service.get("uri")
            for _xui, _name, other in self._stored_documents(exclude=(xui, name))
            for service in other.iter(SERVICE)
        }
        services = [(el, el.get("uri")) for el in root.iter(SERVICE)]
        taken = elsewhere | {uri for _el, uri in services}
        exists, seen = [], set()
        for element, uri in services:
            if uri in seen or uri in elsewhere:
                field = field_of(element, "uri", self.default_namespace)
                exists.append(Exists(field, _alternatives(uri, taken)))
            seen.add(uri)
        if exists:
            raise UniquenessFailure(exists, "service URI already in use")

    def global_document(self, name: str) -> bytes | None:
        if name != "index":
            return None
        root = etree.Element(f"{{{RLS_SERVICES}}}rls-services", nsmap={None: RLS_SERVICES})
        for xui, doc_name, document in sorted(self._stored_documents(), key=lambda r: r[:2]):
            if xui is None or doc_name != "index":
                continue
            for service in document.iter(SERVICE):
                copy = etree.fromstring(etree.tostring(service))
                copy.tail = None
                root.append(copy)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
