"""pidf-manipulation (RFC 4827): presence a user sets over XCAP instead of by PUBLISH.

The document is a PIDF (RFC 3863) and counts as one more presence source of its user, like
a publication that never expires; RPID and data-model elements pass as extensions.
"""

from .base import ApplicationUsage

PIDF = "urn:ietf:params:xml:ns:pidf"


class PidfManipulation(ApplicationUsage):
    auid = "pidf-manipulation"
    mime_type = "application/pidf+xml"
    default_namespace = PIDF
    schema_file = "pidf.xsd"
    namespaces = (PIDF,)
    doc_type = 16
    description = "presence set over XCAP (RFC 4827)"
