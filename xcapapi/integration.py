"""How the XCAP server plugs into the SIP side (installed by XcapConfig.ready).

- pres-rules documents decide presence subscriptions (sipws.services.policy);
- a change of a pres-rules document re-decides the user's watchers at once;
- a pidf-manipulation document is a presence source of its user, like a publication
  that never expires (RFC 4827), and changing it notifies the watchers;
- with XCAP_EXTERNAL_ROOT set, both come from an external XCAP server (`external`).
"""

from __future__ import annotations

from django.db import transaction

from sipws import runtime
from sipws.event_packages.base import Publication
from sipws.services import notify, ordering, policy, subscribe
from sipws.services.authorization import reevaluate
from sipws.services.subscribe import notify_watchers

from . import external
from . import policy as presence_policy
from .signals import document_changed

PIDF_MANIPULATION = "pidf-manipulation"
PIDF = "application/pidf+xml"


def pidf_manipulation(presentity: str) -> list[Publication]:
    where, params = presence_policy.rules_documents([PIDF_MANIPULATION], presentity)
    publications = presence_policy.kept_documents.get(
        ("pidf-manipulation", *params), lambda: _pidf_manipulation(where, params)
    )
    if not publications:
        external.want(presentity)
    return list(publications)


def _pidf_manipulation(where: str, params: list) -> tuple[Publication, ...]:
    return tuple(
        Publication(bytes(r.body), PIDF, r.etag, r.updated.timestamp(), "xcap:pidf-manipulation")
        for r in presence_policy.documents.select(where, params)
    )


def on_document_changed(sender, *, auid, xui, name, deleted, **kwargs) -> None:
    if name != presence_policy.RULES_DOCUMENT:
        return
    if auid not in (*presence_policy.PRES_RULES_AUIDS, PIDF_MANIPULATION):
        return
    server = runtime.get_server()
    if auid in presence_policy.PRES_RULES_AUIDS:
        outgoing = reevaluate(server, xui, "presence")
    else:
        from sipws.event_packages import base as packages

        with transaction.atomic():
            ordering.lock_presentities([xui])
            outgoing = notify_watchers(server, xui, packages.get("presence"))
    notify.send_from_sync(server, outgoing)


def install() -> None:
    policy.register("presence", presence_policy.decide)
    subscribe.publication_sources.setdefault("presence", []).append(pidf_manipulation)
    document_changed.connect(on_document_changed, dispatch_uid="sipws-presence")
    external.install()


install()
