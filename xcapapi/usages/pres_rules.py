"""pres-rules (RFC 5025): who may watch a user's presence and what each watcher sees.

A common policy rule set (RFC 4745) whose actions and transformations come from the
pres-rules namespace. Presence reads a user's rules from the document `index`, as Kamailio
and SIP SIMPLE clients use it. The OMA variant keeps the same documents under another AUID,
with common-policy as the default document namespace (OMA Presence SIMPLE XDM).
"""

from .base import ApplicationUsage

COMMON_POLICY = "urn:ietf:params:xml:ns:common-policy"
PRES_RULES = "urn:ietf:params:xml:ns:pres-rules"


class PresRules(ApplicationUsage):
    auid = "pres-rules"
    mime_type = "application/auth-policy+xml"
    default_namespace = PRES_RULES
    schema_file = "pres-rules.xsd"
    namespaces = (COMMON_POLICY, PRES_RULES)
    doc_type = 2
    description = "presence authorization rules (RFC 5025)"


class OmaPresRules(PresRules):
    auid = "org.openmobilealliance.pres-rules"
    default_namespace = COMMON_POLICY
    description = "presence authorization rules, OMA variant"
