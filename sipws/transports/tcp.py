"""SIP over TCP: messages framed by Content-Length on a byte stream (RFC 3261 §18.3)."""

from __future__ import annotations

import asyncio
import itertools
import logging

from ..core.errors import ParseError
from ..core.flow import Flow
from ..core.message import StreamFramer
from ..services.dispatch import error_response

log = logging.getLogger("sipws.tcp")
_ids = itertools.count(1)


class TcpConnection(asyncio.Protocol):
    """One TCP connection; its id `tcp-<node tag>-<n>` is unique in the cluster and over
    restarts, and names the worker that holds it (transports.delivery)."""

    def __init__(self, receive, closed, registry: dict, max_size: int, node: str = "") -> None:
        self.receive = receive
        self.node = node
        self.closed = closed
        self.registry = registry
        self.framer = StreamFramer(max_size)
        self.transport: asyncio.Transport | None = None
        self.flow: Flow | None = None
        self.pending: set[asyncio.Task] = set()
        self.chain: asyncio.Future | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.flow = Flow("tcp", host, port, f"tcp-{self.node or '0'}-{next(_ids)}")
        self.registry[self.flow.connection] = self

    def data_received(self, data: bytes) -> None:
        if data == b"\r\n\r\n":
            self.write(b"\r\n")  # keep-alive ping gets its pong (RFC 5626 §4.4.1)
            return
        try:
            messages = self.framer.feed(data)
        except ParseError as error:
            # A stream we cannot frame cannot be resynchronised: answer if we can (513
            # for an oversized message), then close it (RFC 3261 §18.3).
            log.info("closing TCP %s: %s", self.flow.remote, error.reason)
            response = error_response(error)
            if response is not None:
                self.write(bytes(response))
            self.transport.close()
            return
        for message in messages:
            self._spawn(self.receive(message, self.flow))

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connection_lost(self, exc) -> None:
        self.registry.pop(self.flow.connection, None)
        self._spawn(self.closed(self.flow))


async def open_tcp(
    host: str,
    port: int,
    receive,
    closed,
    registry: dict,
    max_size: int,
    *,
    node: str = "",
    reuse_port: bool = False,
):
    """Listen; `reuse_port` lets several workers share the port (SO_REUSEPORT)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: TcpConnection(receive, closed, registry, max_size, node),
        host,
        port,
        reuse_address=True,
        reuse_port=reuse_port or None,
    )
    return server, server.sockets[0].getsockname()[:2]


async def connect_tcp(
    host: str, port: int, receive, closed, registry: dict, max_size: int, node: str = ""
):
    """Dial out to a peer whose connection is gone, to deliver a request (RFC 3261 §18.1.1)."""
    loop = asyncio.get_running_loop()
    _, connection = await asyncio.wait_for(
        loop.create_connection(
            lambda: TcpConnection(receive, closed, registry, max_size, node), host, port
        ),
        timeout=5,
    )
    return connection
