"""The request pipeline every transport feeds: parse, rate-limit, transaction, dispatch.

Transports hand `SipServer.receive(data, flow)` the bytes of one message and the flow it
came on; the server answers through the `send(flow, data)` callable it was built with,
so it never imports a transport. Method handlers are coroutines registered by name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache

from ..core.digest import MemoryReplayGuard, NonceFactory, ReplayGuard
from ..core.errors import ParseError
from ..core.flow import Flow
from ..core.message import (
    Request,
    Response,
    branch_node,
    make_response,
    new_branch,
    parse_message,
)
from ..core.ratelimit import RateLimiter
from ..core.transaction import (
    ClientTransactions,
    Disposition,
    FinalResponse,
    Retransmit,
    ServerTransactions,
    Timeout,
)
from ..event_packages import base as packages
from ..observability import logcontext, metrics
from .logonce import log_once

log = logging.getLogger("sipws.server")

Sender = Callable[..., Awaitable[bool]]  # (flow, data, fallback=None) -> delivered
# A handler answers with a response, or with (response, followup) where the followup
# coroutine function runs once the response is sent (the NOTIFY after a SUBSCRIBE), or
# with None when it answers later through `respond()` (a proxied MESSAGE).
Followup = Callable[[], Awaitable[None]]
Handler = Callable[["SipServer", Request, Flow], Awaitable[Response | tuple[Response, Followup]]]
FinalCallback = Callable[[int], Awaitable[None]]
# What a proxy needs instead: the final response itself, None when the transaction timed out.
ResponseCallback = Callable[[int, Response | None], Awaitable[None]]
# Hands a response to the process of the cluster that sent the request: (node tag, bytes).
Forwarder = Callable[[str, bytes], Awaitable[bool]]

ALLOW = "REGISTER, OPTIONS, ACK, CANCEL"
ACCEPT = "application/sdp"
SUPPORTED = "path, outbound"
# Methods a UAS recognises (RFC 3261 §8.2.1): unsupported ones get 405, others 501.
KNOWN_METHODS = frozenset(
    "INVITE ACK BYE CANCEL OPTIONS REGISTER PRACK SUBSCRIBE NOTIFY PUBLISH INFO REFER "
    "MESSAGE UPDATE".split()
)


@dataclass
class ServerConfig:
    """What the pipeline reads of settings.SIP, resolved once at start-up."""

    domains: list[str]
    secret: bytes
    nonce_lifetime: float = 300
    max_message_size: int = 65536
    rate_limit: int = 500
    register_min_expires: int = 60
    register_max_expires: int = 3600
    register_default_expires: int = 600
    max_contacts_per_aor: int = 10
    subscribe_expires: tuple[int, int, int] = (60, 3600, 3600)  # min, max, default
    publish_expires: tuple[int, int, int] = (60, 3600, 3600)
    subscribe_status: int = 200
    max_subscriptions_per_user: int = 1000
    max_publications_per_user: int = 100
    node: str = "local"
    # Short hex name of this process in branches of our requests (`core.message.new_branch`).
    node_tag: str = ""
    # Peers whose requests skip digest authentication (SIP_TRUSTED_PEERS).
    trusted_peers: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # host[:port] this server puts in Via/Contact, per transport of the flow
    advertised: str = "127.0.0.1:5060"
    advertised_tcp: str = ""
    advertised_ws: str = ""
    own_hosts: set[str] = field(default_factory=set)
    digest_algorithms: list[str] = field(default_factory=lambda: ["MD5", "SHA-256"])

    def address_for(self, transport: str) -> str:
        if transport in ("ws", "wss"):
            return self.advertised_ws or self.advertised
        if transport == "tcp":
            return self.advertised_tcp or self.advertised
        return self.advertised

    def serves_domain(self, host: str) -> bool:
        return host.lower() in self.domains

    def is_local(self, host: str) -> bool:
        host = host.lower().strip("[]")
        return host in self.domains or host in self.own_hosts

    def trusts(self, host: str) -> bool:
        """Whether requests from this source address skip digest (Kamailio's permissions)."""
        if not self.trusted_peers:
            return False
        return _trusted(host, self.trusted_peers)


class SipServer:
    """One per process: owns the transaction tables, nonces and the handler registry."""

    def __init__(
        self, config: ServerConfig, send: Sender, replay: ReplayGuard | None = None
    ) -> None:
        self.config = config
        self.send = send
        self.transactions = ServerTransactions()
        self.client_transactions = ClientTransactions()
        self.nonces = NonceFactory(config.secret, config.nonce_lifetime)
        self.replay = replay or MemoryReplayGuard(lifetime=config.nonce_lifetime)
        self.limiter = RateLimiter(config.rate_limit)
        self.handlers: dict[str, Handler] = {}
        self.pending: dict[str, tuple[Flow, ResponseCallback, float]] = {}  # + time sent
        self.handling = 0  # messages being handled now
        self.in_flight: set[asyncio.Task] = set()  # work that outlives its request (relays)
        self.allow = ALLOW
        # Set in a cluster: responses to another process's requests are passed on to it.
        self.forward: Forwarder | None = None

    def new_branch(self) -> str:
        """A branch for a request of ours, naming this process (for `forward`)."""
        return new_branch(self.config.node_tag)

    def route(self, method: str, handler: Handler) -> None:
        self.handlers[method] = handler
        methods = ["REGISTER", "OPTIONS", "ACK", "CANCEL"]
        methods += sorted(m for m in self.handlers if m not in methods)
        self.allow = ", ".join(methods)

    async def receive(self, data: bytes, flow: Flow) -> None:
        """Handle one received message; never raises (one bad peer must not hurt others)."""
        self.handling += 1
        try:
            await self._receive(data, flow)
        finally:
            self.handling -= 1

    async def quiesce(self, timeout: float) -> None:
        """A graceful stop: wait, up to `timeout` seconds, until no received message is
        being handled and no relayed MESSAGE waits for its answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self.handling or self.in_flight) and loop.time() < deadline:
            await asyncio.sleep(0.02)

    async def _receive(self, data: bytes, flow: Flow) -> None:
        now = time.time()
        if not self.limiter.allow(flow.remote_host, now):
            log_once(log, f"rate:{flow.remote_host}", "rate limit exceeded by %s", flow.remote)
            return
        try:
            message = self._parse(data, flow)
        except ParseError as error:
            await self._answer_unparsable(error, flow)
            return
        # Log lines (and NOTIFY delays) from here on belong to this message.
        context = logcontext.enter(message.call_id, message.cseq.method, now)
        try:
            if isinstance(message, Response):
                try:
                    await self._handle_response(message, data, now)
                except ParseError as error:  # a header read late (From, To) is malformed
                    log_once(
                        log, f"bad:{flow.remote_host}:{error.reason}", "bad response: %s", error
                    )
                return
            metrics.request_received(message.method)
            try:
                await self._handle_request(message, flow, now)
            except Exception:
                log.exception("error handling %s from %s", message.method, flow.remote)
                await self._reply(message, flow, make_response(message, 500), now)
        finally:
            logcontext.leave(context)

    def _parse(self, data: bytes, flow: Flow) -> Request | Response:
        return parse_message(
            data, stream=flow.transport == "tcp", max_size=self.config.max_message_size
        )

    async def _answer_unparsable(self, error: ParseError, flow: Flow) -> None:
        log_once(
            log,
            f"bad:{flow.remote_host}:{error.reason}",
            "bad message from %s: %s",
            flow.remote,
            error.reason,
        )
        response = error_response(error)
        if response is not None:
            metrics.response_sent(error.message.method, response.status)
            await self.send(flow, bytes(response))

    async def _handle_request(self, request: Request, flow: Flow, now: float) -> None:
        request.stamp_received(flow.remote_host, flow.remote_port)
        if request.method == "ACK":
            return  # non-INVITE server: no INVITE transaction an ACK could belong to
        key = _transaction_key(request)
        action = self.transactions.receive_request(key, now, flow.reliable)
        if action.disposition is Disposition.ABSORB:
            return
        if action.disposition is Disposition.REPLAY:
            await self.send(flow, action.data)
            return
        if action.disposition is Disposition.OVERLOADED:
            response = make_response(request, 503)
            response.headers.add("Retry-After", "5")
            metrics.response_sent(request.method, 503)
            await self.send(flow, bytes(response))
            return
        answer = await self._dispatch(request, flow)
        followup = None
        if isinstance(answer, tuple):
            answer, followup = answer
        try:
            if answer is not None:
                await self._reply(request, flow, answer, now, key)
        finally:
            # NOTIFYs go out after the response that created the dialog, and go out even
            # if that response could not be sent: the change is committed, and the
            # followup releases the presentity's lock (services/ordering).
            if followup is not None:
                await followup()

    async def _dispatch(self, request: Request, flow: Flow):
        if request.max_forwards == 0 and request.method != "OPTIONS":
            return make_response(request, 483)
        scheme = request.uri.split(":", 1)[0].lower()
        if scheme not in ("sip", "sips"):
            return make_response(request, 416)
        handler = self.handlers.get(request.method)
        if handler is not None:
            return await handler(self, request, flow)
        if request.method == "OPTIONS":
            return self.options_response(request)
        if request.method == "CANCEL":
            return make_response(request, 481)  # we never hold a pending INVITE
        status = 405 if request.method in KNOWN_METHODS else 501
        response = make_response(request, status)
        response.headers.add("Allow", self.allow)
        return response

    def options_response(self, request: Request) -> Response:
        response = make_response(request, 200)
        response.headers.add("Allow", self.allow)
        response.headers.add("Accept", ACCEPT)
        response.headers.add("Supported", SUPPORTED)
        if packages.names():
            response.headers.add("Allow-Events", ", ".join(packages.names()))
        return response

    async def _reply(
        self,
        request: Request,
        flow: Flow,
        response: Response,
        now: float,
        key=None,
    ) -> None:
        data = bytes(response)
        if key is not None:
            self.transactions.send_response(key, response.status, data, now)
        metrics.response_sent(request.method, response.status)
        await self.send(flow, data)

    async def respond(self, request: Request, flow: Flow, response: Response) -> None:
        """Answer, in its server transaction, a request whose handler returned None."""
        await self._reply(request, flow, response, time.time(), _transaction_key(request))

    async def send_request(
        self,
        flow: Flow,
        data: bytes,
        branch: str,
        on_final: FinalCallback | ResponseCallback,
        fallback: tuple[str, int] | None = None,
        *,
        with_response: bool = False,
    ) -> bool:
        """Send a request of ours (NOTIFY) in a client transaction; False if undeliverable.

        `fallback` is the peer's Contact address, dialled if its TCP connection closed.
        `on_final(status)` gets the final status (408 on timeout); with `with_response`,
        `on_final(status, response)` gets the response too (None on timeout).
        """
        if not with_response:
            on_final = _status_only(on_final)
        if not await self.send(flow, data, fallback):
            return False
        now = time.time()
        metrics.request_sent(data, now)
        self.client_transactions.start(branch, data, now, flow.reliable)
        self.pending[branch] = (flow, on_final, now)
        return True

    async def _handle_response(self, response: Response, data: bytes, now: float) -> None:
        try:
            branch = response.top_via.branch
        except ParseError:
            return
        if branch not in self.client_transactions:
            # In a cluster a response may reach another process than the one that sent
            # the request (UDP replies all reach a worker; a WebSocket client answers on
            # its own node): the branch names the sender, who gets it through its channel.
            owner = branch_node(branch or "")
            if owner and owner != self.config.node_tag and self.forward is not None:
                await self.forward(owner, data)
            return
        metrics.response_received(response.cseq.method, response.status)
        event = self.client_transactions.receive_response(branch, response.status, now)
        if isinstance(event, FinalResponse):
            _, on_final, sent = self.pending.pop(branch, (None, None, None))
            if on_final is not None:
                metrics.round_trip(response.cseq.method, now - sent)
                await on_final(response.status, response)

    async def receive_forwarded(self, data: bytes) -> None:
        """A response another process of the cluster received for a request of ours."""
        try:
            message = parse_message(data, max_size=max(len(data), self.config.max_message_size))
            if not isinstance(message, Response):
                return
            branch = message.top_via.branch
            context = logcontext.enter(message.call_id, message.cseq.method, time.time())
        except ParseError:
            return
        try:
            if branch in self.client_transactions:  # never passed on again
                await self._handle_response(message, data, time.time())
        except Exception:
            log.exception("error handling a forwarded response")
        finally:
            logcontext.leave(context)

    async def handle_timers(self, now: float) -> None:
        self.transactions.handle_timer(now)
        for event in self.client_transactions.handle_timer(now):
            if isinstance(event, Retransmit):
                flow, _, _ = self.pending.get(event.key, (None, None, None))
                if flow is not None:
                    await self.send(flow, event.data)
            elif isinstance(event, Timeout):
                _, on_final, _ = self.pending.pop(event.key, (None, None, None))
                if on_final is not None:
                    await on_final(408, None)


def _status_only(on_final: FinalCallback) -> ResponseCallback:
    async def call(status: int, response: Response | None) -> None:
        await on_final(status)

    return call


@lru_cache(maxsize=4096)  # peers recur: a benchmark's or a proxy's one address
def _trusted(host: str, networks: tuple) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return any(address in network for network in networks)


def _transaction_key(request: Request) -> tuple:
    """RFC 3261 §17.2.3: branch + sent-by + method, or the RFC 2543 fallback."""
    via = request.top_via
    branch = via.branch or ""
    if branch.startswith("z9hG4bK"):
        return (branch, via.sent_by, request.method)
    return (request.uri, request.from_.tag, request.call_id, str(request.cseq), str(via))


def error_response(error: ParseError) -> Response | None:
    """The answer to a request that failed to parse, or None where RFC 3261 says drop.

    Without a Via (or for ACK and responses) there is nowhere to send one (§18.3, §17.1).
    """
    request = getattr(error, "message", None)
    if not isinstance(request, Request) or request.method == "ACK":
        return None
    if not request.headers.get_all("Via"):
        return None
    try:
        return make_response(request, error.status, _reason(error))
    except ParseError:
        return None


def _reason(error: ParseError) -> str:
    # Reason phrases are single-line text; keep the parser's explanation readable.
    text = "".join(c for c in error.reason if c.isprintable())[:80]
    base = {400: "Bad Request", 505: "Version Not Supported", 513: "Message Too Large"}
    return f"{base.get(error.status, 'Bad Request')} ({text})" if text else base[error.status]
