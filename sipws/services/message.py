"""MESSAGE relay (RFC 3428) between this server's users, as a stateful proxy (RFC 3261 §16).

`handle_message` makes one database call, `route`: the sender authenticates against a
407 challenge, as a proxy's users do, its From must be its own address, and the
Request-URI must name a user of a domain served here (this is no open relay). `relay`
then forks the MESSAGE in parallel to every registration of that user, over the flow each
registered on, one client transaction per branch; `core.proxy.ResponseContext` picks the
answer (a 2xx at once, else the best final response, 408 when SIP_MESSAGE_TIMEOUT passes
first), sent back in the sender's server transaction with our Via removed. A user with no
registration gets 480, or with SIP_OFFLINE_MESSAGES the message waits (services/offline).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import unquote

from django.conf import settings
from django.utils import timezone

from ..core.errors import ParseError
from ..core.flow import Flow
from ..core.headers import split_list
from ..core.message import Request, Response, make_response
from ..core.proxy import ResponseContext, forward
from ..core.uri import SipUri
from ..models import Registration, SipAccount
from . import offline
from .accounts import enabled_account
from .common import Reject, authenticated_sender
from .dbthread import in_db_thread

log = logging.getLogger("sipws.message")


@dataclass(frozen=True)
class Branch:
    """Where one registration of the recipient is reached."""

    flow: Flow
    contact: str
    path: tuple[str, ...] = ()
    fallback: tuple[str, int] | None = None  # the Contact address, if a TCP flow closed


async def handle_message(server, request: Request, flow: Flow):
    routed = await in_db_thread(route)(server, request, flow)
    if isinstance(routed, Response):
        return routed
    # The answer may take until SIP_MESSAGE_TIMEOUT: never hold up the sender's connection.
    task = asyncio.get_running_loop().create_task(relay(server, request, flow, *routed))
    server.in_flight.add(task)
    task.add_done_callback(server.in_flight.discard)
    return None


def route(server, request: Request, flow: Flow):
    """The error or offline answer, or (sender AOR, recipient, branches) to relay to."""
    try:
        sender = authenticated_sender(server, request, proxy=True, source=flow.remote_host)
        recipient = _recipient(server, request)
    except Reject as reject:
        return reject.response
    bindings = recipient.registrations.filter(expires__gt=timezone.now())
    # The sender's own binding is left out: a device does not get its own message back.
    branches = [b for row in bindings if (b := _branch(row)) is not None and b.flow != flow]
    if branches:
        return sender.aor, recipient, branches
    if offline.enabled():
        return offline.store(request, sender.aor, recipient)
    return make_response(request, 480)


def _recipient(server, request: Request) -> SipAccount:
    uri = request.sip_uri
    config = server.config
    if not config.serves_domain(uri.host) and not config.is_local(uri.host):
        raise Reject(make_response(request, 403, "Forbidden (relaying denied)"))
    account = None
    if uri.user and config.serves_domain(uri.host):
        account = enabled_account(unquote(uri.user), uri.host.lower())
    if account is None:
        raise Reject(make_response(request, 404, "Not Found (no such user)"))
    return account


def _branch(row: Registration) -> Branch | None:
    host, _, port = row.received.rpartition(":")
    if not port.isdigit():
        return None
    path = tuple(split_list(row.path)) if row.path else ()
    fallback = None
    if row.transport == "tcp" and not path:
        try:
            uri = SipUri.parse(row.contact)
            fallback = (uri.host.strip("[]"), uri.port or 5060)
        except ParseError:
            pass
    flow = Flow(row.transport, host.strip("[]"), int(port), row.connection)
    return Branch(flow, row.contact, path, fallback)


async def relay(
    server, request: Request, flow: Flow, sender: str, recipient: SipAccount, branches
) -> None:
    """Fork to every branch, wait for the answer, send it back in the server transaction."""
    try:
        answer = await _fork(server, request, sender, recipient, branches)
    except Exception:
        log.exception("relaying MESSAGE %s failed", request.call_id)
        answer = make_response(request, 500)
    await server.respond(request, flow, answer)


async def _fork(server, request: Request, sender: str, recipient: SipAccount, branches):
    keys = [server.new_branch() for _ in branches]
    context = ResponseContext(request, keys)
    decided = asyncio.Event()

    def on_final(key: str):
        async def final(status: int, response: Response | None) -> None:
            if response is not None:
                context.receive(key, response)
            else:
                context.fail(key, status)  # Timer F: as if a 408 came (§16.7)
            if context.answer is not None:
                decided.set()

        return final

    config = server.config
    for key, branch in zip(keys, branches, strict=True):
        if context.answer is not None:
            break  # a 6xx came back already: no new branches (§16.7 step 5)
        via = f"SIP/2.0/{branch.flow.via_transport} {config.address_for(branch.flow.transport)}"
        copy = forward(
            request,
            branch.contact,
            f"{via};branch={key};rport",
            path=branch.path,
            is_own=config.is_local,
            realms=config.domains,
        )
        sent = await server.send_request(
            branch.flow, bytes(copy), key, on_final(key), branch.fallback, with_response=True
        )
        if not sent and context.fail(key, 503) is not None:  # transport error (§16.9)
            decided.set()
    try:
        await asyncio.wait_for(decided.wait(), settings.SIP["MESSAGE_TIMEOUT"])
    except TimeoutError:
        context.expire()
    answer = context.answer
    if answer.status >= 300 and context.best_status in offline.STORE_ON and offline.enabled():
        return await in_db_thread(offline.store)(request, sender, recipient)
    return answer
