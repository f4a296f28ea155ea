"""Offline MESSAGE storage, delivered at the user's next REGISTER: what Kamailio's msilo does.

With SIP_OFFLINE_MESSAGES on, a MESSAGE for a user with no reachable registration is kept
(`store`, answered 202 Accepted) within a per-user cap of messages and bytes and an age
limit. The registrar is wrapped (`delivering`) so that a REGISTER adding a binding sends
that contact the stored messages as MESSAGE requests from the server, with the original
From, Content-Type and body plus a Date header (RFC 3428 §10); each is deleted once a 2xx
comes back and otherwise kept for the next REGISTER.
"""

from __future__ import annotations

import email.utils
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from ..core.errors import ParseError
from ..core.flow import Flow
from ..core.message import Headers, Request, Response, make_response, new_tag
from ..core.uri import NameAddr
from ..models import OfflineMessage, SipAccount
from . import dbthread
from .dbthread import in_db_thread

log = logging.getLogger("sipws.offline")
# Final answers of a relay meaning "no device took it now": the message waits instead.
STORE_ON = frozenset({408, 480, 503})
# A claimed message is not sent again before its transaction has surely ended (64*T1).
LEASE = timedelta(seconds=40)


def enabled() -> bool:
    return settings.SIP["OFFLINE_MESSAGES"]


def store(request: Request, sender: str, account: SipAccount) -> Response:
    """Keep the MESSAGE for `account`: 202 Accepted, or 480 when the user's store is full."""
    sip = settings.SIP
    now = timezone.now()
    size = len(request.body)
    with dbthread.atomic():
        OfflineMessage.objects.filter(expires__lte=now).delete()  # the age limit, swept here
        SipAccount.objects.select_for_update().filter(pk=account.pk).first()  # one at a time
        held = OfflineMessage.objects.filter(account=account).aggregate(
            count=Count("id"), size=Sum("size")
        )
        if held["count"] >= sip["OFFLINE_MAX_MESSAGES"] or (
            (held["size"] or 0) + size > sip["OFFLINE_MAX_BYTES"]
        ):
            log.info("offline store of %s is full: message from %s refused", account, sender)
            return make_response(request, 480, "Temporarily Unavailable (message store full)")
        OfflineMessage.objects.create(
            account=account,
            sender=sender,
            from_header=str(_without_tag(request.from_)),
            to_header=str(_without_tag(request.to)),
            content_type=request.headers.get("Content-Type", ""),
            body=request.body,
            size=size,
            received=now,
            expires=now + timedelta(seconds=sip["OFFLINE_MAX_AGE"]),
        )
    return make_response(request, 202)


def _without_tag(address: NameAddr) -> NameAddr:
    return replace(address, params=tuple(p for p in address.params if p[0].lower() != "tag"))


# Delivery at REGISTER ---------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """One stored message on its way to a contact."""

    pk: int
    data: bytes
    branch: str


def delivering(register):
    """Wrap the REGISTER handler: a REGISTER that adds a binding gets the stored messages."""

    async def handle(server, request: Request, flow: Flow):
        answer = await register(server, request, flow)
        response, followup = answer if isinstance(answer, tuple) else (answer, None)
        contact = _added_contact(request) if response.status == 200 else None
        if contact is None:
            return answer

        async def then_deliver() -> None:
            if followup is not None:
                await followup()
            await deliver(server, request, flow, contact)

        return response, then_deliver

    return handle


def _added_contact(request: Request) -> str | None:
    """The first Contact the REGISTER binds (not removes), as the Request-URI to send to."""
    try:
        default = request.expires
        for contact in request.contacts:
            value = contact.param("expires")
            expires = int(value) if value is not None and value.isdigit() else default
            if expires != 0:
                return str(contact.sip_uri)
    except ParseError:  # a 200 was sent, so this is not expected
        pass
    return None


async def deliver(server, request: Request, flow: Flow, contact: str) -> None:
    """Send the stored messages of the REGISTER's AOR to `contact` over `flow`."""
    outgoing = await in_db_thread(claim)(server, request, flow, contact)
    for item in outgoing:
        sent = await server.send_request(flow, item.data, item.branch, _on_final(item.pk))
        if not sent:
            await in_db_thread(settle)(item.pk, delivered=False)


def _on_final(pk: int):
    async def on_final(status: int) -> None:
        delivered = 200 <= status < 300
        if not delivered:
            log.info("stored message %d answered %d: kept for the next REGISTER", pk, status)
        await in_db_thread(settle)(pk, delivered=delivered)

    return on_final


def claim(server, request: Request, flow: Flow, contact: str) -> list[Stored]:
    """Mark the AOR's live stored messages as being sent and build their MESSAGEs."""
    aor = request.to.sip_uri
    now = timezone.now()
    with dbthread.atomic():
        rows = list(
            OfflineMessage.objects.select_for_update()
            .filter(account__username=unquote(aor.user or ""), account__domain=aor.host.lower())
            .filter(expires__gt=now)
            .filter(Q(sending_until__isnull=True) | Q(sending_until__lt=now))
            .order_by("received", "id")
        )
        if not rows:
            return []
        OfflineMessage.objects.filter(pk__in=[row.pk for row in rows]).update(
            sending_until=now + LEASE
        )
    path = request.headers.get_all("Path")
    return [_message(server, row, flow, contact, path) for row in rows]


def settle(pk: int, *, delivered: bool) -> None:
    if delivered:
        OfflineMessage.objects.filter(pk=pk).delete()
    else:
        OfflineMessage.objects.filter(pk=pk).update(sending_until=None)


def _message(server, row: OfflineMessage, flow: Flow, contact: str, path: list[str]) -> Stored:
    branch = server.new_branch()
    address = server.config.address_for(flow.transport)
    headers = Headers()
    headers.add("Via", f"SIP/2.0/{flow.via_transport} {address};branch={branch};rport")
    for route in path:
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", f"{row.from_header};tag={new_tag()}")
    headers.add("To", row.to_header)
    headers.add("Call-ID", f"{secrets.token_hex(12)}@{address}")
    headers.add("CSeq", "1 MESSAGE")
    headers.add("Date", _http_date(row.received))
    if row.content_type:
        headers.add("Content-Type", row.content_type)
    request = Request("MESSAGE", contact, headers, bytes(row.body))
    return Stored(row.pk, bytes(request), branch)


def _http_date(moment: datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)
