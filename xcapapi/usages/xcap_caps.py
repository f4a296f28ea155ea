"""xcap-caps (RFC 4825 §12): the server's capabilities, one read-only global document.

`xcap-caps/global/index` lists the AUIDs, extensions and namespaces this server supports. It
is generated on each read, so it always matches the registered application usages.
"""

from __future__ import annotations

from lxml import etree

from .base import ApplicationUsage

XCAP_CAPS = "urn:ietf:params:xml:ns:xcap-caps"
XCAP_ERROR = "urn:ietf:params:xml:ns:xcap-error"


class XcapCaps(ApplicationUsage):
    auid = "xcap-caps"
    mime_type = "application/xcap-caps+xml"
    default_namespace = XCAP_CAPS
    schema_file = "xcap-caps.xsd"
    namespaces = (XCAP_CAPS,)
    doc_type = 32
    users_tree = False
    description = "XCAP server capabilities (RFC 4825)"

    def global_document(self, name: str) -> bytes | None:
        if name != "index":
            return None
        from . import all_usages

        usages = all_usages()
        namespaces = sorted({ns for usage in usages for ns in usage.namespaces} | {XCAP_ERROR})
        root = etree.Element(f"{{{XCAP_CAPS}}}xcap-caps", nsmap={None: XCAP_CAPS})
        auids = etree.SubElement(root, f"{{{XCAP_CAPS}}}auids")
        for auid in sorted(usage.auid for usage in usages):
            etree.SubElement(auids, f"{{{XCAP_CAPS}}}auid").text = auid
        etree.SubElement(root, f"{{{XCAP_CAPS}}}extensions")
        names = etree.SubElement(root, f"{{{XCAP_CAPS}}}namespaces")
        for namespace in namespaces:
            etree.SubElement(names, f"{{{XCAP_CAPS}}}namespace").text = namespace
        etree.indent(root)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
