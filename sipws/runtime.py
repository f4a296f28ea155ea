"""The process-wide SIP server: built once from settings, shared by every transport.

`runsip` (embedded default) and `sipworker` (scale-out) start the UDP/TCP listeners and
the timers here; a Daphne process serving only HTTP and WebSocket builds the server
lazily and starts its node services (`start_node`) on its first connection.

In a cluster (REDIS_URL set) every process is a node with a tag (in NODE_ID, in the Via
branches of its requests and in its TCP connection ids), a channel of its own
(`sipws.node.<tag>`: responses to its requests that reached another process, messages
for its TCP connections) and a lease it renews (services/leases).
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from channels.layers import get_channel_layer
from django.conf import settings

from .core.flow import Flow
from .services import checkpoint, expiry, leases, notify, offline
from .services.dbthread import in_db_thread
from .services.dispatch import ServerConfig, SipServer
from .services.logonce import log_once
from .services.message import handle_message
from .services.publish import handle_publish
from .services.register import handle_register
from .services.subscribe import handle_subscribe
from .transports.delivery import delivery, node_channel

log = logging.getLogger("sipws.runtime")
NODE_TAG = secrets.token_hex(4)
NODE_ID = f"{socket.gethostname()[:40]}-{os.getpid()}-{NODE_TAG}"
_server: SipServer | None = None
_tasks: set[asyncio.Task] = set()
_listeners: list = []
_bound: dict[str, str] = {}  # transport -> host:port actually bound
_timers_started = False
_node_started = False
_leader = True  # the oldest live worker of a cluster; the only process when embedded


def in_cluster() -> bool:
    """Several processes share the state: the Redis channel layer joins them."""
    return bool(settings.REDIS_URL)


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
    process that owns the SIP sockets (runsip; of several sipworkers, the oldest), so a
    scale-out deployment runs them once; the others in every process that runs SIP
    timers. Registering a name again replaces its job.
    """
    _periodic[name] = Periodic(interval, run, owner_only)


def start_periodic(now: float) -> None:
    """Start the jobs that are due (the timer loop calls this on every tick)."""
    for name, job in _periodic.items():
        if now < job.next_at or (job.task is not None and not job.task.done()):
            continue
        if job.owner_only and not (delivery.owns_sip_sockets and _leader):
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
        node_tag=NODE_TAG,
        trusted_peers=tuple(
            ipaddress.ip_network(peer, strict=False) for peer in sip["TRUSTED_PEERS"]
        ),
        advertised=sip["ADVERTISED_ADDRESS"] or sip["UDP_BIND"],
        own_hosts=own_hosts,
        digest_algorithms=sip["DIGEST_ALGORITHMS"],
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
        delivery.node_tag = NODE_TAG
        delivery.max_layer_message = settings.SIP["LAYER_MAX_MESSAGE_SIZE"]
        if in_cluster():
            _server.forward = delivery.forward_response
    return _server


def start_timers() -> None:
    """Start the timer loop on the running event loop, once per process."""
    global _timers_started
    if not _timers_started:
        _timers_started = True
        every("sqlite-checkpoint", checkpoint.CHECKPOINT_INTERVAL, checkpoint.checkpoint)
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
    await in_db_thread(_forget_connection)(flow)


def _forget_connection(flow: Flow) -> None:
    from .models import ActiveWatcher, Registration

    bound = Registration.objects.filter(connection=flow.connection)
    if flow.transport == "tcp":
        bound = bound.filter(reg_id__isnull=False)  # RFC 5626 flows only; plain TCP may reconnect
    bound.delete()
    if flow.transport != "tcp":
        ActiveWatcher.objects.filter(connection=flow.connection).delete()


def forget_previous_run() -> int:
    """WebSocket flows cannot survive a restart: drop the bindings and dialogs of earlier runs.

    In a cluster the other nodes' flows live on: there the leases decide what is dead.
    """
    from .models import ActiveWatcher, Registration

    if in_cluster():
        return 0
    stale = {"transport__in": ("ws", "wss")}
    deleted, _ = Registration.objects.filter(**stale).exclude(node=NODE_ID).delete()
    ws_flows = ActiveWatcher.objects.filter(flow__startswith="ws").exclude(node=NODE_ID)
    dropped, _ = ws_flows.delete()
    return deleted + dropped


def start_node() -> None:
    """Start what every process of a deployment runs, once: the timers and, in a cluster,
    the lease renewal and the node channel. Called on the running event loop."""
    global _node_started
    start_timers()
    if _node_started:
        return
    _node_started = True
    if in_cluster():
        server = get_server()
        _spawn(_lease_loop(server))
        _spawn(serve_channel(node_channel(NODE_TAG)))


class StartsNode:
    """ASGI middleware: a Daphne node starts its node services on its first connection,
    since the daphne command line has no start-up hook (runsip starts them itself)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if not _node_started and scope["type"] in ("http", "websocket"):
            host, port = scope.get("server") or (None, None)
            if port and "ws" not in _bound:  # the HTTP address, for Via/Contact over WebSocket
                set_advertised("ws", f"{host}:{port}")
            start_node()
        return await self.app(scope, receive, send)


async def _lease_loop(server: SipServer) -> None:
    """Renew this node's lease every NODE_HEARTBEAT seconds, and reap dead nodes.

    A node judges others only once it has renewed without a failure for a whole lease:
    after an outage of the database every live node has renewed again by then.
    """
    global _leader
    sip = settings.SIP
    renew = in_db_thread(leases.renew)
    first, orphans_done, healthy_since = True, False, None
    while True:
        now = time.monotonic()
        reaping = healthy_since is not None and now - healthy_since >= sip["NODE_LEASE"]
        kind = "worker" if delivery.owns_sip_sockets else "daphne"
        try:
            renewal = await renew(
                server,
                NODE_ID,
                NODE_TAG,
                kind,
                sip["NODE_LEASE"],
                reaping=reaping,
                orphans=reaping and not orphans_done,
                first=first,
            )
        except Exception as error:
            healthy_since = None
            log_once(log, "lease", "renewing the node lease failed: %r", error)
        else:
            first, orphans_done = False, orphans_done or reaping
            healthy_since = healthy_since or now
            delivery.live_nodes, _leader = renewal.tags, renewal.leader
            if renewal.lost:
                await _drop_connections()
            await notify.send(server, renewal.outgoing)
        await asyncio.sleep(sip["NODE_HEARTBEAT"])


async def _drop_connections() -> None:
    """This node was taken for dead and its flows ended: close its connections, so that
    their clients connect again and register anew."""
    log.warning(
        "this node's lease had run out and its flows were ended by another node: "
        "closing %d WebSocket and %d TCP connections",
        len(delivery.websockets),
        len(delivery.tcp),
    )
    for consumer in list(delivery.websockets.values()):
        await consumer.close()
    for connection in list(delivery.tcp.values()):
        connection.transport.close()


async def stop_node() -> None:
    """A graceful stop: the lease ends now, so another node reaps what this one held."""
    if in_cluster() and _node_started:
        try:
            await in_db_thread(leases.release)(NODE_ID)
        except Exception as error:
            log.warning("could not release the node lease: %s", error)


async def serve_channel(channel: str) -> None:
    """Handle what other processes send this one on `channel`: responses to our requests
    (sip.response) and messages for our UDP/TCP sockets (sip.out), in order."""
    server = get_server()
    layer = get_channel_layer()
    delay = 0.5
    while True:
        try:
            message = await layer.receive(channel)
            delay = 0.5
        except asyncio.CancelledError:
            raise
        except Exception as error:  # Redis away: wait for it
            log_once(log, f"receive:{channel}", "channel layer receive on %s: %r", channel, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            continue
        try:
            kind = message.get("type")
            if kind == "sip.response":
                _spawn(server.receive_forwarded(message["data"]))  # may wait on the database
            elif kind == "sip.out":
                await delivery.relay(message)
            else:
                log.warning("unknown message type %r on %s", kind, channel)
        except Exception:
            log.exception("handling a message from %s failed", channel)


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


async def start_sip_listeners(stdout, *, reuse_port: bool = False) -> None:
    """Bind UDP and TCP, mark this process as their owner, and print the bound ports.

    `reuse_port`: several sipworkers share the ports (SO_REUSEPORT).
    """
    from .transports.tcp import connect_tcp, open_tcp
    from .transports.udp import open_udp

    sip = settings.SIP
    server = get_server()
    delivery.owns_sip_sockets = True
    start_node()
    udp_host, udp_port = split_bind(sip["UDP_BIND"])
    endpoint, udp_addr = await open_udp(
        udp_host, udp_port, server.receive, sip["UDP_RCVBUF"], reuse_port=reuse_port
    )
    delivery.udp = endpoint
    tcp_host, tcp_port = split_bind(sip["TCP_BIND"])
    delivery.tcp_connector = partial(
        connect_tcp,
        receive=server.receive,
        closed=connection_closed,
        registry=delivery.tcp,
        max_size=sip["MAX_MESSAGE_SIZE"],
        node=NODE_TAG,
    )
    tcp_server, tcp_addr = await open_tcp(
        tcp_host,
        tcp_port,
        server.receive,
        connection_closed,
        delivery.tcp,
        sip["MAX_MESSAGE_SIZE"],
        node=NODE_TAG,
        reuse_port=reuse_port,
    )
    _listeners.extend([endpoint.transport, tcp_server])
    await _start_control(sip["CONTROL_SOCKET"], stdout)
    freeze_startup_heap()
    set_advertised("udp", _hostport(udp_addr))
    set_advertised("tcp", _hostport(tcp_addr))
    stdout.write(f"SIP UDP listening on {_hostport(udp_addr)}\n")
    stdout.write(f"SIP TCP listening on {_hostport(tcp_addr)}\n")
    stdout.flush()


# Objects allocated between two collections of the youngest generation. A request makes
# several hundred, nearly all freed at once by reference counting; at Python's 700 the
# collector ran every other request and moved the requests in flight to the older
# generations, whose collections then walked them again. At 10,000 a PUBLISH lifecycle
# took 2 % fewer instructions (bench/inprocess.py --instructions, 32 calls together).
YOUNG_GENERATION_THRESHOLD = 10_000


def freeze_startup_heap() -> None:
    """Keep what start-up built (modules, settings, URL patterns, the ORM's metadata) out
    of the garbage collector's scans: it lives as long as the process, yet every
    collection of the oldest generation walked it again. On an in-process PUBLISH loop
    the collector's time fell from 124 to 20 ms per 4,000 requests. Then collect the
    youngest generation less often (YOUNG_GENERATION_THRESHOLD)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])


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
    if _server is not None and (_server.handling or _server.in_flight):
        busy = _server.handling + len(_server.in_flight)
        log.info("waiting for %d SIP requests in flight", busy)
        await _server.quiesce(timeout)
    await stop_node()
