"""SIP over UDP: one datagram, one message (RFC 3261 §18)."""

from __future__ import annotations

import asyncio
import logging
import socket

from ..core.flow import Flow

log = logging.getLogger("sipws.udp")


class UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, receive) -> None:
        self.receive = receive  # coroutine function (data, flow)
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: set[asyncio.Task] = set()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if data.strip(b"\r\n\x00") == b"":
            return  # keep-alive (RFC 5626 §4.4.1 CRLF / STUN-less pings)
        task = asyncio.ensure_future(self.receive(data, Flow("udp", addr[0], addr[1])))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def error_received(self, exc) -> None:
        log.debug("UDP error: %s", exc)  # ICMP unreachable for a watcher that left

    def sendto(self, data: bytes, flow: Flow) -> None:
        if self.transport is not None:
            self.transport.sendto(data, (flow.remote_host, flow.remote_port))


async def open_udp(
    host: str, port: int, receive, rcvbuf: int, *, reuse_port: bool = False
) -> tuple[UdpEndpoint, tuple]:
    """Bind; `reuse_port` lets several workers share the port (SO_REUSEPORT: the kernel
    spreads peers over them, and each one sends from the same address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # Bursts of replies to a NOTIFY fan-out overflow the default buffer (Kamailio too).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((host, port))
    loop = asyncio.get_running_loop()
    _, endpoint = await loop.create_datagram_endpoint(lambda: UdpEndpoint(receive), sock=sock)
    return endpoint, sock.getsockname()[:2]
