"""pres-rules as presence authorization: read the user's rules document, decide, re-decide.

The rules live in `pres-rules/users/sip:{user}@{domain}/index` (or the OMA auid), as
Kamailio and SIP SIMPLE clients keep them; with XCAP_EXTERNAL_ROOT set, only the copies
fetched from the external server count (`external`). Parsed rulesets are cached per document
ETag, so a NOTIFY fan-out reads one ETag, not one document per watcher.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from lxml import etree

from sipws import xmlsafe
from sipws.services.kept import KeptAnswers
from sipws.services.policy import ALLOW, Decision, batch_cache
from sipws.services.rows import Table
from sipws.services.settingcache import setting

from . import external, presrules
from .models import XcapDocument

documents = Table(XcapDocument)
# Which documents a presentity has, as read while no XCAP document changed (services/kept).
kept_documents = KeptAnswers("xcap-documents", XcapDocument)

log = logging.getLogger("xcapapi.policy")
PRES_RULES_AUIDS = ("pres-rules", "org.openmobilealliance.pres-rules")
RULES_DOCUMENT = "index"
_MAX_CACHED = 10_000
_cache: OrderedDict[tuple[str, str], etree._Element | None] = OrderedDict()

PENDING = Decision("pending")
REJECTED = Decision("terminated", "rejected")
POLITE_BLOCK = Decision("active", "polite-block", lambda state: None, "polite-block")


def decide(watcher: str, presentity: str) -> Decision:
    """The presence subscription state and view for `watcher` of `presentity`."""
    own = presrules.normalize(watcher) == presrules.normalize(presentity)
    if setting("SIP")["FORCE_ACTIVE"] or own:
        return ALLOW
    ruleset = ruleset_for(presentity)
    sphere = _sphere_of(presentity) if _has_sphere_condition(ruleset) else None
    verdict = presrules.evaluate(ruleset, watcher, sphere=sphere)
    handling = verdict.handling or default_handling(watcher, presentity)
    if handling == "allow":
        return _allow(verdict)
    if handling == "polite-block":
        return POLITE_BLOCK
    if handling == "confirm":
        return PENDING
    return REJECTED


def default_handling(watcher: str, presentity: str) -> str:
    """PRESENCE_DEFAULT_POLICY when no rule matches: confirm, allow-same-domain or allow."""
    policy = setting("SIP")["DEFAULT_POLICY"]
    if policy == "allow":
        return "allow"
    if policy == "allow-same-domain":
        same = (
            presrules.normalize(watcher).rpartition("@")[2]
            == presrules.normalize(presentity).rpartition("@")[2]
        )
        return "allow" if same else "confirm"
    return "confirm"


def _allow(verdict: presrules.Verdict) -> Decision:
    if verdict.permissions is None:
        return ALLOW
    return Decision("active", view=PidfView(verdict.permissions), view_key=verdict.view_key)


class PidfView:
    """Cuts one watcher's share out of a PIDF document (RFC 5025 transformations)."""

    def __init__(self, permissions: presrules.Permissions) -> None:
        self.permissions = permissions

    def __call__(self, state: bytes) -> bytes | None:
        try:
            root = xmlsafe.parse(state, max_bytes=len(state) + 1)
        except xmlsafe.XmlError:
            return None  # never show a body we cannot filter
        presrules.apply(self.permissions, root)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def ruleset_for(presentity: str) -> etree._Element | None:
    """The parsed pres-rules document of a presentity, or None when there is none.

    Within a policy batch (one NOTIFY fan-out) the answer is looked up once.
    """
    scratch = batch_cache()
    if scratch is None:
        return _load_ruleset(presentity)
    key = ("pres-rules", presentity)
    if key not in scratch:
        scratch[key] = _load_ruleset(presentity)
    return scratch[key]


def _load_ruleset(presentity: str) -> etree._Element | None:
    where, params = rules_documents(PRES_RULES_AUIDS, presentity)
    rank = PRES_RULES_AUIDS.index
    versions = sorted(
        kept_documents.get(
            ("versions", *params),
            lambda: documents.execute(
                f'SELECT "auid", "etag" FROM {documents.name} WHERE {where}', params
            ),
        ),
        key=lambda row: rank(row[0]),
    )
    if not versions:
        external.want(presentity)  # fetched in the background, never waited for here
        return None
    auid, etag = versions[0]
    key = (presentity, etag)
    if key not in _cache:
        where, params = rules_documents([auid], presentity)
        found = documents.execute(f'SELECT "body" FROM {documents.name} WHERE {where}', params)
        _cache[key] = _parse(bytes(found[0][0]) if found else b"")
        if len(_cache) > _MAX_CACHED:
            _cache.popitem(last=False)
    return _cache[key]


def rules_documents(auids, presentity: str) -> tuple[str, list]:
    """WHERE clause and parameters: the presentity's documents of these usages named
    `index` (from the external server only, in external mode). Plain SQL (rows.Table):
    every SUBSCRIBE and NOTIFY fan-out reads them."""
    where = f'"auid" IN ({", ".join(["%s"] * len(auids))}) AND "xui" = %s AND "name" = %s'
    params = [*auids, presentity, RULES_DOCUMENT]
    if external.enabled():
        where += ' AND "source" = %s'
        params.append(XcapDocument.Source.EXTERNAL.value)
    return where, params


def _parse(body: bytes) -> etree._Element | None:
    try:
        return xmlsafe.parse(body, max_bytes=len(body) + 1)
    except xmlsafe.XmlError as error:
        log.warning("unreadable pres-rules document ignored: %s", error.reason)
        return None


def _has_sphere_condition(ruleset: etree._Element | None) -> bool:
    return ruleset is not None and ruleset.find(f".//{{{presrules.CP}}}sphere") is not None


def _sphere_of(presentity: str) -> str | None:
    from sipws.event_packages import base as packages
    from sipws.services.subscribe import current_state

    state = current_state(packages.get("presence"), presentity)
    if not state:
        return None
    try:
        return presrules.current_sphere(xmlsafe.parse(state, max_bytes=len(state) + 1))
    except xmlsafe.XmlError:
        return None
