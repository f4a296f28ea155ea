"""The registrar (RFC 3261 §10.3) with WebSocket flows bound to their connection (RFC 5626).

`handle_register` checks what needs no database, then makes one database call,
`do_register`, that authenticates and updates the bindings in one transaction.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from ..core.errors import ParseError
from ..core.flow import Flow
from ..core.message import Request, Response, make_response
from ..core.uri import NameAddr, SipUri
from ..models import Registration
from . import dbthread
from .auth import authenticate_request
from .dbthread import in_db_thread
from .rows import Table


@dataclass(frozen=True)
class Binding:
    """One Contact of a REGISTER with what the registrar derived from it."""

    contact: NameAddr
    expires: int
    instance_id: str
    reg_id: int | None

    @property
    def uri(self) -> SipUri:
        return self.contact.sip_uri


class RegisterError(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


registrations = Table(Registration)


async def handle_register(server, request: Request, flow: Flow) -> Response:
    try:
        aor_uri = _check_addresses(server, request)
        bindings = _bindings(server, request)
    except RegisterError as error:
        return error.response
    return await in_db_thread(do_register)(server, request, flow, aor_uri, bindings)


def _check_addresses(server, request: Request) -> SipUri:
    config = server.config
    if not config.is_local(request.sip_uri.host):
        raise RegisterError(make_response(request, 404, "Not Found (domain not served)"))
    try:
        aor_uri = request.to.sip_uri
    except ParseError:
        raise RegisterError(make_response(request, 404, "Not Found (not a SIP AOR)")) from None
    if not config.serves_domain(aor_uri.host) or not aor_uri.user:
        raise RegisterError(make_response(request, 404, "Not Found (domain not served)"))
    return aor_uri


def _bindings(server, request: Request) -> list[Binding] | None:
    """The requested bindings; None for `Contact: *`; [] for a query."""
    config = server.config
    raw = request.headers.get_all("Contact")
    default = request.expires
    if "*" in raw:
        if len(raw) != 1 or default != 0:
            raise RegisterError(make_response(request, 400, "Bad Request (* needs Expires: 0)"))
        return None
    bindings = []
    for contact in request.contacts:
        value = contact.param("expires")
        if value is not None and not value.isdigit():
            raise RegisterError(make_response(request, 400, "Bad Request (bad expires)"))
        expires = int(value) if value is not None else default
        if expires is None:
            expires = config.register_default_expires
        if 0 < expires < config.register_min_expires:
            response = make_response(request, 423)
            response.headers.add("Min-Expires", str(config.register_min_expires))
            raise RegisterError(response)
        if not isinstance(contact.uri, SipUri):
            raise RegisterError(make_response(request, 416))
        reg_id = contact.param("reg-id")
        bindings.append(
            Binding(
                contact=contact,
                expires=min(expires, config.register_max_expires),
                instance_id=(contact.param("+sip.instance") or "").strip('"'),
                reg_id=int(reg_id) if reg_id and reg_id.isdigit() else None,
            )
        )
    return bindings


def do_register(server, request, flow, aor_uri, bindings) -> Response:
    auth = authenticate_request(server, request, aor_uri.host, source=flow.remote_host)
    if auth.response is not None:
        return auth.response
    account = auth.account
    if account.username != unquote(aor_uri.user):
        return make_response(request, 403, "Forbidden (not your address-of-record)")
    now = datetime.now(UTC)
    try:
        with dbthread.atomic():
            if bindings is None:
                registrations.delete('"account_id" = %s', [account.pk])
            stored = _apply(server, request, flow, account, bindings or [], now)
        current = sorted(
            (row for row in stored if row.expires > now), key=lambda row: row.updated, reverse=True
        )
    except RegisterError as error:
        return error.response
    return _ok(request, current, now, bindings)


def _apply(server, request, flow, account, bindings, now) -> list[Registration]:
    """Store the bindings; return all of the account's registrations after the change."""
    existing = registrations.select('"account_id" = %s', [account.pk], for_update=True)
    call_id, cseq = request.call_id, request.cseq.number
    live = sum(1 for r in existing if r.expires > now)
    for binding in bindings:
        row = _find(existing, binding)
        if row is not None and row.call_id == call_id and row.cseq >= cseq:
            raise RegisterError(
                make_response(request, 500, "Server Internal Error (out of order CSeq)")
            )
        if binding.expires == 0:
            if row is not None:
                registrations.delete_ids([row.pk])
                existing.remove(row)
            continue
        if row is None:
            if live >= server.config.max_contacts_per_aor:
                raise RegisterError(make_response(request, 403, "Forbidden (too many contacts)"))
            row = Registration(account=account, aor=account.aor)
            existing.append(row)
            live += 1
        _fill(row, binding, request, flow, server, now)
        registrations.save(row, *FILLED)
    return existing


def _find(existing: list[Registration], binding: Binding) -> Registration | None:
    for row in existing:
        if binding.instance_id and binding.reg_id is not None:
            # RFC 5626 §6: a flow is one (instance, reg-id); a reconnect replaces it.
            if row.instance_id == binding.instance_id and row.reg_id == binding.reg_id:
                return row
        elif _same_uri(row.contact, binding.uri):
            return row
    return None


def _same_uri(stored: str, uri: SipUri) -> bool:
    try:
        return SipUri.parse(stored).matches(uri)
    except ParseError:
        return False


FILLED = (
    "contact", "expires", "q", "call_id", "cseq", "transport", "received", "connection",
    "node", "instance_id", "reg_id", "user_agent", "path",
)  # fmt: skip


def _fill(row, binding, request, flow, server, now) -> None:
    q = binding.contact.param("q")
    row.contact = str(binding.uri)
    row.expires = now + timedelta(seconds=binding.expires)
    row.q = float(q) if q and _is_float(q) else None
    row.call_id = request.call_id
    row.cseq = request.cseq.number
    row.transport = flow.transport
    row.received = flow.remote
    row.connection = flow.connection
    row.node = server.config.node
    row.instance_id = binding.instance_id
    row.reg_id = binding.reg_id
    row.user_agent = (request.headers.get("User-Agent") or "")[:255]
    row.path = ", ".join(request.headers.get_all("Path"))


def _is_float(text: str) -> bool:
    try:
        return 0.0 <= float(text) <= 1.0
    except ValueError:
        return False


def _ok(request, current, now, bindings) -> Response:
    response = make_response(request, 200)
    for row in current:
        contact = f"<{row.contact}>;expires={max(0, int((row.expires - now).total_seconds()))}"
        if row.q is not None:
            contact += f";q={row.q:g}"
        if row.instance_id:
            contact += f';+sip.instance="{row.instance_id}"'
        if row.reg_id is not None:
            contact += f";reg-id={row.reg_id}"
        response.headers.add("Contact", contact)
    supported = {s.lower() for s in request.headers.get_all("Supported")}
    if bindings and "outbound" in supported and any(b.reg_id is not None for b in bindings):
        response.headers.add("Require", "outbound")  # RFC 5626 §6
    if "path" in supported:
        for path in request.headers.get_all("Path"):
            response.headers.add("Path", path)
    response.headers.add("Date", email.utils.format_datetime(now, usegmt=True))
    return response
