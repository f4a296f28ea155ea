"""Writing XCAP documents to the database: every write gets a new ETag and, once committed,
sends `document_changed`.

The XCAP views, Django admin and the presence side's external-XCAP cache all write
through here, so watchers are re-evaluated whichever way a document changed.
"""

from __future__ import annotations

from django.db import transaction

from .etags import new_etag
from .models import XcapDocument
from .signals import send_on_commit
from .uri import canonical_xui
from .usages import get as get_usage


@transaction.atomic
def save_document(
    *,
    auid: str,
    xui: str,
    name: str,
    body: bytes,
    etag: str | None = None,
    source: int = XcapDocument.Source.LOCAL,
) -> tuple[XcapDocument, bool]:
    """Create or replace one document; returns it and whether it was created.

    `etag` keeps a tag from elsewhere (an external server's); by default a new one is made.
    """
    usage = get_usage(auid)
    username, domain = canonical_xui(xui) or ("", "")
    document, created = XcapDocument.objects.select_for_update().get_or_create(
        auid=auid,
        xui=xui,
        name=name,
        defaults={"body": b"", "etag": ""},
    )
    document.username, document.domain = username, domain
    document.doc_type = usage.doc_type if usage else 0
    document.content_type = usage.mime_type if usage else "application/xml"
    document.body = bytes(body)
    document.etag = etag or new_etag()
    document.source = source
    document.save()
    send_on_commit(auid=auid, xui=xui, name=name, deleted=False)
    return document, created


@transaction.atomic
def delete_document(document: XcapDocument) -> None:
    document.delete()
    send_on_commit(auid=document.auid, xui=document.xui, name=document.name, deleted=True)
