"""What every XCAP application usage defines (RFC 4825 §5): the contract and its defaults.

An application usage names its AUID, the MIME type of its documents, the default document
namespace for node selectors, an XML schema and the constraints a schema cannot say. The
server validates every write with them, in the order RFC 4825 §8.2.5 gives: schema first,
then uniqueness and other constraints.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from lxml import etree

from ..errors import SchemaValidationError

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
XS = "http://www.w3.org/2001/XMLSchema"

# Namespace -> the schema file defining it, for every namespace the server can validate.
SCHEMA_FILES = {
    "urn:ietf:params:xml:ns:common-policy": "common-policy.xsd",
    "urn:ietf:params:xml:ns:pres-rules": "pres-rules.xsd",
    "urn:ietf:params:xml:ns:resource-lists": "resource-lists.xsd",
    "urn:ietf:params:xml:ns:rls-services": "rls-services.xsd",
    "urn:ietf:params:xml:ns:pidf": "pidf.xsd",
    "urn:ietf:params:xml:ns:xcap-caps": "xcap-caps.xsd",
    "urn:ietf:params:xml:ns:xcap-error": "xcap-error.xsd",
}


def _schema_parser() -> etree.XMLParser:
    # Our own files, but the same rule as for any XML: nothing from the network.
    return etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)


def load_schema(filename: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / filename), _schema_parser()))


def declared_elements(namespace: str) -> frozenset[str]:
    """Local names of every element, global or local, the namespace's schema declares."""
    tree = etree.parse(str(SCHEMA_DIR / SCHEMA_FILES[namespace]), _schema_parser())
    return frozenset(el.get("name") for el in tree.iter(f"{{{XS}}}element") if el.get("name"))


class ApplicationUsage:
    """One application usage. Subclasses set the class attributes and add constraints."""

    auid: str = ""
    mime_type: str = ""
    default_namespace: str | None = None
    schema_file: str | None = None
    # Namespaces whose schemas this usage validates; listed in xcap-caps.
    namespaces: tuple[str, ...] = ()
    # Kamailio's doc_type bit for the AUID, kept in XcapDocument.doc_type.
    doc_type: int = 0
    # False for usages with global documents only (xcap-caps).
    users_tree: bool = True
    description: str = ""

    @cached_property
    def schema(self) -> etree.XMLSchema | None:
        return load_schema(self.schema_file) if self.schema_file else None

    @cached_property
    def _declared(self) -> dict[str, frozenset[str]]:
        return {ns: declared_elements(ns) for ns in self.namespaces}

    def validate(self, root, *, xui: str | None, name: str) -> None:
        """Raise an XcapError unless the document satisfies schema and constraints."""
        self.validate_schema(root)
        self.check_constraints(root, xui=xui, name=name)

    def validate_schema(self, root) -> None:
        schema = self.schema
        if schema is not None and not schema.validate(root.getroottree()):
            error = schema.error_log.last_error
            raise SchemaValidationError(_short(error.message if error else "invalid"))
        # Lax wildcards let any element through when its schema is unknown; an element in a
        # namespace we claim to know (RFC 4825 §8.2.5) must be one that namespace defines.
        for element in root.iter(etree.Element):
            qname = etree.QName(element)
            known = self._declared.get(qname.namespace)
            if known is not None and qname.localname not in known:
                raise SchemaValidationError(
                    f"element {qname.localname!r} is not defined in {qname.namespace}"
                )

    def check_constraints(self, root, *, xui: str | None, name: str) -> None:
        """Constraints beyond the schema (RFC 4825 §8.2.5); none by default."""

    def global_document(self, name: str) -> bytes | None:
        """A document of the global tree, generated on each read; None if there is none."""
        return None


def _short(message: str, limit: int = 300) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."
