"""Outbound routing: send bytes back over the flow a peer is reachable on.

A WebSocket flow is owned by one consumer (in this process, or on another Daphne node
reached through the channel layer); UDP and TCP flows are owned by the process that
runs the SIP listeners (this one in the embedded default, `sipworker` when scaled out).
"""

from __future__ import annotations

import logging

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from ..core.flow import Flow
from ..services.logonce import log_once

log = logging.getLogger("sipws.delivery")
WORKER_CHANNEL = "sipworker"


class Delivery:
    def __init__(self) -> None:
        self.websockets: dict[str, object] = {}  # channel name -> consumer
        self.tcp: dict[str, object] = {}  # connection id -> TcpConnection
        self.tcp_targets: dict[tuple[str, int], str] = {}  # address we dialled -> id
        self.tcp_connector = None  # coroutine (host, port) -> TcpConnection, set by runtime
        self.udp = None  # UdpEndpoint when this process owns the UDP socket
        self.owns_sip_sockets = False
        self.channel_full = 0

    async def send(self, flow: Flow, data: bytes, fallback: tuple[str, int] | None = None) -> bool:
        """Send one message; False when the flow is known to be gone.

        `fallback` is where a request may open a new TCP connection when the flow's
        connection has closed (RFC 3261 §18.1.1): the peer's Contact address.
        """
        if flow.transport in ("ws", "wss"):
            consumer = self.websockets.get(flow.connection)
            if consumer is not None:
                await consumer.send_sip(data)
                return True
            return await self._via_layer(flow.connection, {"type": "sip.send", "data": data})
        if self.owns_sip_sockets:
            if flow.transport == "udp" and self.udp is not None:
                self.udp.sendto(data, flow)
                return True
            connection = self.tcp.get(flow.connection)
            if connection is None and fallback is not None and flow.transport == "tcp":
                connection = await self._connect(fallback)
            if connection is not None:
                connection.write(data)
                return True
            return False
        message = {"type": "sip.out", "flow": flow.serialize(), "data": data}
        if fallback is not None:
            message["fallback"] = list(fallback)
        return await self._via_layer(WORKER_CHANNEL, message)

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

    async def _via_layer(self, channel: str, message: dict) -> bool:
        layer = get_channel_layer()
        if layer is None or not channel or "!" not in channel and channel != WORKER_CHANNEL:
            return False
        try:
            await layer.send(channel, message)
            return True
        except ChannelFull:
            self.channel_full += 1
            log_once(log, f"full:{channel}", "channel layer full for %s", channel)
            return False


delivery = Delivery()
