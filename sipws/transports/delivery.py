"""Outbound routing: send bytes back over the flow a peer is reachable on.

A WebSocket flow is owned by one consumer (in this process, or on another Daphne node
reached through the channel layer); UDP and TCP flows are owned by the processes that
run the SIP listeners (this one in the embedded default, the `sipworker`s when scaled
out). Any worker sends UDP (they share the port); a TCP connection lives in the worker
named in its id, reached on that worker's node channel.

Every message handed to the channel layer goes through `layer_send`, which never raises:
a message larger than SIP_LAYER_MAX_MESSAGE_SIZE, a full channel (ChannelFull) and an
unreachable layer are logged and counted by reason (sip_channel_layer_send_failures).
"""

from __future__ import annotations

import logging
import re

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from ..core.flow import Flow
from ..services.logonce import log_once

log = logging.getLogger("sipws.delivery")
WORKER_CHANNEL = "sipworker"  # shared by the workers: UDP/TCP messages from Daphne nodes
NODE_CHANNEL = "sipws.node."  # + node tag: one per process of a cluster
FAILURES = ("full", "too_large", "error")
_TCP_OWNER = re.compile(r"tcp-([0-9a-f]+)-\d+$")


def node_channel(tag: str) -> str:
    return NODE_CHANNEL + tag


def tcp_owner(connection: str) -> str | None:
    """The node tag in a TCP connection id (`tcp-<tag>-<n>`, transports.tcp)."""
    match = _TCP_OWNER.match(connection)
    return match.group(1) if match else None


class Delivery:
    def __init__(self) -> None:
        self.websockets: dict[str, object] = {}  # channel name -> consumer
        self.tcp: dict[str, object] = {}  # connection id -> TcpConnection
        self.tcp_targets: dict[tuple[str, int], str] = {}  # address we dialled -> id
        self.tcp_connector = None  # coroutine (host, port) -> TcpConnection, set by runtime
        self.udp = None  # UdpEndpoint when this process owns the UDP socket
        self.owns_sip_sockets = False
        self.node_tag = ""
        self.live_nodes: frozenset[str] | None = None  # tags with a live lease; None: no cluster
        self.max_layer_message = 1024 * 1024
        self.failures = dict.fromkeys(FAILURES, 0)

    @property
    def channel_full(self) -> int:
        return self.failures["full"]

    async def send(self, flow: Flow, data: bytes, fallback: tuple[str, int] | None = None) -> bool:
        """Send one message; False when the flow is known to be gone or refused it.

        `fallback` is where a request may open a new TCP connection when the flow's
        connection has closed (RFC 3261 §18.1.1): the peer's Contact address.
        """
        if flow.transport in ("ws", "wss"):
            consumer = self.websockets.get(flow.connection)
            if consumer is not None:
                return await consumer.send_sip(data)
            if "!" not in flow.connection:
                return False  # no channel name: nowhere to send it
            sent = await self.layer_send(flow.connection, {"type": "sip.send", "data": data})
            # A consumer whose channel is full is not reading: its flow counts as gone.
            return sent is not False
        owner = tcp_owner(flow.connection) if flow.transport == "tcp" else None
        if self.owns_sip_sockets:
            if flow.transport == "udp" and self.udp is not None:
                self.udp.sendto(data, flow)
                return True
            connection = self.tcp.get(flow.connection)
            if connection is None and owner not in (None, self.node_tag) and self._alive(owner):
                return await self._relay(node_channel(owner), flow, data, fallback)
            if connection is None and fallback is not None and flow.transport == "tcp":
                connection = await self._connect(fallback)
            if connection is not None:
                connection.write(data)
                return True
            return False
        channel = WORKER_CHANNEL
        if owner is not None and self._alive(owner):
            channel = node_channel(owner)
        return await self._relay(channel, flow, data, fallback)

    async def _relay(self, channel, flow: Flow, data: bytes, fallback) -> bool:
        message = {"type": "sip.out", "flow": flow.serialize(), "data": data}
        if fallback is not None:
            message["fallback"] = list(fallback)
        # A worker that is down or behind is like a lost datagram: the transaction's
        # timers retransmit (UDP) or give up (408). Only a message too large is refused.
        return await self.layer_send(channel, message) is not False

    async def relay(self, message: dict) -> None:
        """Send a `sip.out` message another process handed to this worker."""
        fallback = tuple(message["fallback"]) if "fallback" in message else None
        await self.send(Flow.deserialize(message["flow"]), message["data"], fallback)

    async def forward_response(self, tag: str, data: bytes) -> bool:
        """Pass a response on to the process that sent the request (its branch names it)."""
        message = {"type": "sip.response", "data": data}
        return bool(await self.layer_send(node_channel(tag), message))

    def _alive(self, tag: str) -> bool:
        """Whether the node is known to live (a TCP id of a run before a restart is not)."""
        return self.live_nodes is not None and tag in self.live_nodes

    async def _connect(self, address: tuple[str, int]):
        """An open connection to `address`, reusing the one opened before if it lives."""
        known = self.tcp_targets.get(address)
        if known in self.tcp:
            return self.tcp[known]
        try:
            connection = await self.tcp_connector(*address)
        except OSError as error:
            log_once(log, f"connect:{address}", "cannot open TCP to %s: %s", address, error)
            return None
        self.tcp_targets[address] = connection.flow.connection
        return connection

    async def layer_send(self, channel: str, message: dict) -> bool | None:
        """Hand `message` to the channel layer. True when sent; False when refused for
        good (too large); None when it may pass later (channel full, layer unreachable)."""
        layer = get_channel_layer()
        if layer is None:
            return False
        size = len(message.get("data", b""))
        if size > self.max_layer_message:
            self._failed(
                "too_large",
                channel,
                "message of %d bytes refused for %s: SIP_LAYER_MAX_MESSAGE_SIZE is %d",
                size,
                channel,
                self.max_layer_message,
            )
            return False
        try:
            await layer.send(channel, message)
        except ChannelFull:
            self._failed("full", channel, "channel layer full for %s: message dropped", channel)
            return False if "!" in channel else None
        except Exception as error:  # Redis unreachable, ...: never crash the caller
            self._failed("error", channel, "channel layer send to %s failed: %r", channel, error)
            return None
        return True

    def _failed(self, reason: str, channel: str, text: str, *args) -> None:
        self.failures[reason] += 1
        # One line per reason and kind of channel, not one per WebSocket consumer.
        kind = "consumer" if "!" in channel else channel.rsplit(".", 1)[0]
        log_once(log, f"{reason}:{kind}", text, *args)


delivery = Delivery()
