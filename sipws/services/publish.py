"""PUBLISH (RFC 3903): initial, refresh, modify and remove publications of any package.

Changes to one presentity are serialized, across nodes too (services/ordering), so
watchers see states in commit order. The aggregate is built once per change; each
watcher's NOTIFY is cut from it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from django.db import transaction

from ..core import tokens
from ..core.errors import ParseError
from ..core.flow import Flow
from ..core.message import Request, make_response
from ..event_packages.base import BadBody
from ..models import Presentity
from . import dbthread, notify, ordering, policy
from .common import Reject, authenticated_sender, bounded_expires, event_package, resource_aor
from .dbthread import in_db_thread
from .subscribe import notify_watchers, presentities


async def handle_publish(server, request: Request, flow: Flow):
    try:
        package = event_package(request, publishing=True)
        expires = bounded_expires(request, server.config.publish_expires)
        presentity = resource_aor(server, request)
        etag = request.headers.get("SIP-If-Match")
        _check_body(request, package, etag)
    except Reject as reject:
        return reject.response
    return await ordering.change(
        server,
        presentity,
        lambda: _publish(server, request, package, expires, presentity, etag, flow.remote_host),
    )


def _check_body(request: Request, package, etag: str | None) -> None:
    if not request.body:
        if etag is None:
            raise Reject(make_response(request, 400, "Bad Request (initial PUBLISH needs a body)"))
        return
    try:
        content_type = request.headers.get("Content-Type") or ""
        package.validate(request.body, content_type)
    except BadBody as error:
        response = make_response(request, error.status, f"{_reason(error.status)} ({error.reason})")
        if error.status == 415:
            response.headers.add("Accept", ", ".join(package.content_types))
        raise Reject(response) from None
    except ParseError:
        raise Reject(make_response(request, 400, "Bad Request (bad Content-Type)")) from None


def _reason(status: int) -> str:
    return "Unsupported Media Type" if status == 415 else "Bad Request"


def do_publish(server, request, package, expires, presentity, etag, source=None):
    try:
        account = authenticated_sender(server, request, source=source)
        if not policy.may_publish(package.name, account, presentity):
            raise Reject(make_response(request, 403, "Forbidden (not your presentity)"))
        with dbthread.atomic():
            ordering.lock_presentities([presentity])
            new_etag, changed = _apply(server, request, package, expires, presentity, etag, account)
            outgoing = []
            if changed:
                outgoing = notify_watchers(server, presentity, package)
    except Reject as reject:
        return reject.response, []
    response = make_response(request, 200)
    if new_etag is not None:
        response.headers.add("SIP-ETag", new_etag)
    response.headers.add("Expires", str(expires))
    return response, outgoing


_publish = in_db_thread(do_publish)
_OF_PRESENTITY = '"uri" = %s AND "event" = %s'


def _apply(server, request, package, expires, presentity, etag, account):
    """Write the publication; return (the new entity-tag or None, whether state changed)."""
    now = datetime.now(UTC)
    if etag is not None:
        live = f'{_OF_PRESENTITY} AND "etag" = %s AND "expires" > %s'
        params = [presentity, package.name, etag.strip().strip('"'), now]
        if not request.body:  # a refresh or a removal: one statement, no read first
            if expires == 0:
                found = presentities.delete(live, params)
                new_etag = None
            else:
                new_etag = _new_etag()
                moved = {"etag": new_etag, "expires": now + timedelta(seconds=expires)}
                found = presentities.update(moved, live, params)
            if not found:
                raise Reject(make_response(request, 412))
            return new_etag, expires == 0
        row = presentities.first(live, params, for_update=True)
        if row is None:
            raise Reject(make_response(request, 412))
        if expires == 0:
            presentities.delete_ids([row.pk])
            return None, True
        row.etag = _new_etag()
        row.expires = now + timedelta(seconds=expires)
        previous = bytes(row.body)
        _set_body(row, request)
        row.body = package.successor(previous, request.body)
        presentities.save_fields(row, "etag", "expires", "body", "content_type", "received_time")
        return row.etag, True
    # A client re-PUBLISHing a body without SIP-If-Match replaces its own publication
    # (same user, and same Contact or Call-ID) instead of piling up duplicates.
    same_device, params = _same_device(request, presentity, package.name, account.aor)
    previous = presentities.first(same_device, params, order='"received_time" DESC')
    removed = presentities.delete(same_device, params) if previous is not None else 0
    if expires == 0:
        return None, bool(removed)
    if not removed:
        published = presentities.count('"publisher" = %s', [account.aor])
        if published >= server.config.max_publications_per_user:
            response = make_response(request, 503, "Service Unavailable (too many publications)")
            response.headers.add("Retry-After", "60")
            raise Reject(response)
    row = presentities.new(
        uri=presentity,
        event=package.name,
        etag=_new_etag(),
        expires=now + timedelta(seconds=expires),
        publisher=account.aor,
        sender=_sender(request),
        call_id=request.call_id,
    )
    _set_body(row, request)
    if previous is not None:
        row.body = package.successor(bytes(previous.body), request.body)
    presentities.insert(row)
    return row.etag, True


def _same_device(request, presentity: str, event: str, publisher: str) -> tuple[str, list]:
    """WHERE clause and parameters: this user's publications from the same device."""
    where = f'{_OF_PRESENTITY} AND "publisher" = %s AND ("call_id" = %s'
    params = [presentity, event, publisher, request.call_id]
    sender = _sender(request)
    if sender:
        where += ' OR "sender" = %s'
        params.append(sender)
    return where + ")", params


def _sender(request: Request) -> str:
    try:
        contacts = request.contacts
    except ParseError:
        return ""
    return str(contacts[0].uri) if contacts else ""


def _set_body(row: Presentity, request: Request) -> None:
    row.body = request.body
    row.content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    row.received_time = time.time()


def _new_etag() -> str:
    return tokens.token_urlsafe(12)


# State set by other means than a SIP PUBLISH (the MWI REST API): a publication that
# never expires unless replaced, from a named sender, through the same engine.
FOREVER = timedelta(days=365 * 100)


def set_state(
    server, presentity: str, package, body: bytes, *, sender: str, content_type: str | None = None
) -> list[notify.Outgoing]:
    """Replace `sender`'s publication of `presentity`; return the NOTIFYs to send."""
    package.validate(body, content_type or package.content_types[0])
    with transaction.atomic():
        ordering.lock_presentities([presentity])
        Presentity.objects.filter(uri=presentity, event=package.name, sender=sender).delete()
        row = Presentity(
            uri=presentity,
            event=package.name,
            etag=_new_etag(),
            expires=datetime.now(UTC) + FOREVER,
            publisher=sender,
            sender=sender,
        )
        row.body = body
        row.content_type = content_type or package.content_types[0]
        row.received_time = time.time()
        row.save()
        return notify_watchers(server, presentity, package)


def clear_state(
    server, presentity: str, package, *, sender: str | None = None
) -> list[notify.Outgoing]:
    """Remove `sender`'s publication (every publication when None) and notify."""
    with transaction.atomic():
        ordering.lock_presentities([presentity])
        rows = Presentity.objects.filter(uri=presentity, event=package.name)
        if sender is not None:
            rows = rows.filter(sender=sender)
        removed, _ = rows.delete()
        if not removed:
            return []
        return notify_watchers(server, presentity, package)
