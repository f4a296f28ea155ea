"""The process-wide SIP server: built once from settings, shared by every transport.

`runsip` (embedded default) and `sipworker` (scale-out) start the UDP/TCP listeners and
the timers here; a Daphne process serving only WebSocket builds the server lazily on its
first SIP frame.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from channels.db import database_sync_to_async
from django.conf import settings

from .core.flow import Flow
from .services import expiry, offline
from .services.dispatch import ServerConfig, SipServer
from .services.message import handle_message
from .services.publish import handle_publish
from .services.register import handle_register
from .services.subscribe import handle_subscribe
from .transports.delivery import delivery

log = logging.getLogger("sipws.runtime")
NODE_ID = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
_server: SipServer | None = None
_tasks: set[asyncio.Task] = set()
_listeners: list = []
_bound: dict[str, str] = {}  # transport -> host:port actually bound
_timers_started = False


@dataclass
class Periodic:
    """A job of another app that the timer loop starts every `interval` seconds."""

    interval: float
    run: Callable[[float], Awaitable[None]]
    owner_only: bool
    next_at: float = 0.0
    task: asyncio.Task | None = None


_periodic: dict[str, Periodic] = {}


def every(
    name: str, interval: float, run: Callable[[float], Awaitable[None]], *, owner_only=True
) -> None:
    """Run `run(now)` every `interval` seconds on the timer loop (the first time at once).

    Each run is a task of its own, so a slow job (an HTTP poll) never holds up the
    transaction timers, and a job never overlaps itself. `owner_only` jobs run only in the
    process that owns the SIP sockets (runsip, sipworker), so a scale-out deployment runs
    them once; the others in every process that runs SIP timers. Registering a name
    again replaces its job.
    """
    _periodic[name] = Periodic(interval, run, owner_only)


def start_periodic(now: float) -> None:
    """Start the jobs that are due (the timer loop calls this on every tick)."""
    for name, job in _periodic.items():
        if now < job.next_at or (job.task is not None and not job.task.done()):
            continue
        if job.owner_only and not delivery.owns_sip_sockets:
            continue
        job.next_at = now + job.interval
        job.task = _spawn(_logged(name, job.run(now)))


async def _logged(name: str, job: Awaitable[None]) -> None:
    try:
        await job
    except Exception:
        log.exception("periodic job %s failed", name)


def build_config() -> ServerConfig:
    sip = settings.SIP
    own_hosts = {"localhost", "127.0.0.1", "::1"}
    for bind in (sip["UDP_BIND"], sip["TCP_BIND"], sip["HTTP_BIND"], sip["ADVERTISED_ADDRESS"]):
        if bind:
            own_hosts.add(split_bind(bind)[0].lower())
    return ServerConfig(
        domains=sip["DOMAINS"],
        secret=sip["SECRET"].encode(),
        nonce_lifetime=sip["NONCE_LIFETIME"],
        max_message_size=sip["MAX_MESSAGE_SIZE"],
        rate_limit=sip["RATE_LIMIT"],
        register_min_expires=sip["REGISTER_MIN_EXPIRES"],
        register_max_expires=sip["REGISTER_MAX_EXPIRES"],
        register_default_expires=sip["REGISTER_DEFAULT_EXPIRES"],
        max_contacts_per_aor=sip["MAX_CONTACTS_PER_AOR"],
        subscribe_expires=(
            sip["SUBSCRIBE_MIN_EXPIRES"],
            sip["SUBSCRIBE_MAX_EXPIRES"],
            sip["SUBSCRIBE_DEFAULT_EXPIRES"],
        ),
        publish_expires=(
            sip["PUBLISH_MIN_EXPIRES"],
            sip["PUBLISH_MAX_EXPIRES"],
            sip["PUBLISH_DEFAULT_EXPIRES"],
        ),
        subscribe_status=sip["SUBSCRIBE_STATUS"],
        max_subscriptions_per_user=sip["MAX_SUBSCRIPTIONS_PER_USER"],
        max_publications_per_user=sip["MAX_PUBLICATIONS_PER_USER"],
        node=NODE_ID,
        advertised=sip["ADVERTISED_ADDRESS"] or sip["UDP_BIND"],
        own_hosts=own_hosts,
    )


def split_bind(text: str) -> tuple[str, int]:
    """'127.0.0.1:5060', '[::1]:5060' or ':5060' → (host, port)."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def get_server() -> SipServer:
    global _server
    if _server is None:
        _server = SipServer(build_config(), delivery.send, _replay_guard())
        _apply_bound(_server.config)
        _server.route("REGISTER", handle_register)
        _server.route("SUBSCRIBE", handle_subscribe)
        _server.route("PUBLISH", handle_publish)
        _server.route("MESSAGE", handle_message)
        if offline.enabled():  # stored MESSAGEs go out at the next REGISTER (msilo)
            _server.route("REGISTER", offline.delivering(handle_register))
    return _server


def start_timers() -> None:
    """Start the timer loop on the running event loop, once per process."""
    global _timers_started
    if not _timers_started:
        _timers_started = True
        _spawn(_timer_loop(get_server()))


def _replay_guard():
    """Nonce-counts live in Redis when nodes share it, in process otherwise."""
    if not settings.REDIS_URL:
        return None
    from .services.replay import RedisReplayGuard

    return RedisReplayGuard(settings.REDIS_URL, settings.SIP["NONCE_LIFETIME"])


def set_advertised(transport: str, address: str) -> None:
    """Once a listener is bound (port 0 in tests) its real address goes in Via/Contact.

    SIP_ADVERTISED_ADDRESS, when set, names the UDP/TCP address; WebSocket flows carry
    its host with the HTTP port.
    """
    advertised = settings.SIP["ADVERTISED_ADDRESS"]
    if transport == "ws" and advertised:
        address = f"{_host_of(advertised)}:{address.rpartition(':')[2]}"
    elif advertised:
        return
    _bound[transport] = address
    if _server is not None:
        _apply_bound(_server.config)


def _apply_bound(config: ServerConfig) -> None:
    config.advertised = _bound.get("udp", config.advertised)
    config.advertised_tcp = _bound.get("tcp", config.advertised_tcp)
    config.advertised_ws = _bound.get("ws", config.advertised_ws)


def _host_of(hostport: str) -> str:
    if hostport.startswith("["):
        return hostport[: hostport.index("]") + 1]
    return hostport.split(":")[0]


async def connection_closed(flow: Flow) -> None:
    """A WebSocket (or TCP outbound flow) is gone: its bindings are unreachable now."""
    await database_sync_to_async(_forget_connection)(flow)


def _forget_connection(flow: Flow) -> None:
    from .models import ActiveWatcher, Registration

    bound = Registration.objects.filter(connection=flow.connection)
    if flow.transport == "tcp":
        bound = bound.filter(reg_id__isnull=False)  # RFC 5626 flows only; plain TCP may reconnect
    bound.delete()
    if flow.transport != "tcp":
        ActiveWatcher.objects.filter(connection=flow.connection).delete()


def forget_previous_run() -> int:
    """WebSocket flows cannot survive a restart: drop the bindings and dialogs of earlier runs."""
    from .models import ActiveWatcher, Registration

    stale = {"transport__in": ("ws", "wss")}
    deleted, _ = Registration.objects.filter(**stale).exclude(node=NODE_ID).delete()
    ws_flows = ActiveWatcher.objects.filter(flow__startswith="ws").exclude(node=NODE_ID)
    dropped, _ = ws_flows.delete()
    return deleted + dropped


async def _timer_loop(server: SipServer) -> None:
    """Transaction timers every 100 ms; expiry of stored state every few seconds; the
    periodic jobs other apps register with `every`."""
    interval = settings.SIP["EXPIRY_INTERVAL"]
    next_expiry = time.time() + interval
    while True:
        await asyncio.sleep(0.1)
        now = time.time()
        try:
            await server.handle_timers(now)
            start_periodic(now)
            if now >= next_expiry and delivery.owns_sip_sockets:
                next_expiry = now + interval
                await expiry.expire(server)
        except Exception:
            log.exception("timer loop step failed")


def _spawn(coroutine) -> asyncio.Task:
    task = asyncio.get_running_loop().create_task(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


async def start_sip_listeners(stdout) -> None:
    """Bind UDP and TCP, mark this process as their owner, and print the bound ports."""
    from .transports.tcp import connect_tcp, open_tcp
    from .transports.udp import open_udp

    sip = settings.SIP
    server = get_server()
    start_timers()
    delivery.owns_sip_sockets = True
    udp_host, udp_port = split_bind(sip["UDP_BIND"])
    endpoint, udp_addr = await open_udp(udp_host, udp_port, server.receive, sip["UDP_RCVBUF"])
    delivery.udp = endpoint
    tcp_host, tcp_port = split_bind(sip["TCP_BIND"])
    delivery.tcp_connector = partial(
        connect_tcp,
        receive=server.receive,
        closed=connection_closed,
        registry=delivery.tcp,
        max_size=sip["MAX_MESSAGE_SIZE"],
    )
    tcp_server, tcp_addr = await open_tcp(
        tcp_host, tcp_port, server.receive, connection_closed, delivery.tcp, sip["MAX_MESSAGE_SIZE"]
    )
    _listeners.extend([endpoint.transport, tcp_server])
    await _start_control(sip["CONTROL_SOCKET"], stdout)
    set_advertised("udp", _hostport(udp_addr))
    set_advertised("tcp", _hostport(tcp_addr))
    stdout.write(f"SIP UDP listening on {_hostport(udp_addr)}\n")
    stdout.write(f"SIP TCP listening on {_hostport(tcp_addr)}\n")
    stdout.flush()


async def _start_control(path: str, stdout) -> None:
    """The Unix socket `manage.py presence` reaches this process on (transports.control)."""
    from .transports import control

    if not path:
        return
    listener = await control.serve(path, _control_request)
    if listener is not None:
        _listeners.append(listener)
        stdout.write(f"control socket at {path}\n")


async def _control_request(request: dict) -> dict:
    from .services import operations

    try:
        arguments = request.get("arguments") or {}
        result = await operations.perform(get_server(), request.get("action"), arguments)
    except operations.OperationError as error:
        return {"ok": False, "status": error.status, "error": str(error)}
    except Exception as error:
        log.exception("control request %r failed", request.get("action"))
        return {"ok": False, "status": 500, "error": f"internal error: {error}"}
    return {"ok": True, "result": result}


def _hostport(addr) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def drain(timeout: float = 10.0) -> None:
    """Graceful stop: accept no new SIP messages, let requests in flight finish."""
    for listener in _listeners:
        listener.close()
    _listeners.clear()
    if _server is not None and _server.in_flight:
        log.info("waiting for %d SIP requests in flight", len(_server.in_flight))
        await asyncio.wait(set(_server.in_flight), timeout=timeout)
