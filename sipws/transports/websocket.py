"""SIP over WebSocket (RFC 7118): a thin Channels consumer, one SIP message per frame."""

from __future__ import annotations

import itertools
import logging
import os
from urllib.parse import urlparse

from autobahn.exception import Disconnected  # Daphne's WebSocket layer
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from .. import runtime
from ..core.flow import Flow
from .delivery import delivery

log = logging.getLogger("sipws.websocket")


# Names of consumers in a single process; like channel names they key the consumer in
# delivery.websockets and the flow's connection in the database, but name no layer
# channel (no "!"), so a NOTIFY for a closed one is refused at once, not queued.
LOCAL_CHANNEL_PREFIX = "ws.local."
_local_ids = itertools.count(1)


class SipWebSocketConsumer(AsyncWebsocketConsumer):
    flow: Flow | None = None

    async def __call__(self, scope, receive, send):
        if runtime.in_cluster():
            await super().__call__(scope, receive, send)  # NOTIFYs arrive on the layer too
            return
        # One process: NOTIFYs reach this consumer through delivery.websockets, never the
        # channel layer, so frames are read straight from Daphne. Channels would also
        # wait on a layer channel, with a task and an asyncio.wait per frame.
        self.scope = scope
        self.channel_layer = None
        self.channel_name = f"{LOCAL_CHANNEL_PREFIX}{os.getpid()}.{next(_local_ids)}"
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message):
        # Channels' dispatch hops to a thread to close stale DB connections before every
        # frame; SIP handlers make their own single database call, which does that anyway.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"no handler for {message['type']}")
        await handler(message)

    async def connect(self):
        if "sip" not in self.scope.get("subprotocols", []):
            log.info(
                "refused WebSocket without the sip subprotocol from %s", self.scope.get("client")
            )
            await self.close()
            return
        if not _origin_allowed(self.scope):
            log.info("refused WebSocket from origin %s", _header(self.scope, b"origin"))
            await self.close()
            return
        client = self.scope.get("client") or ("0.0.0.0", 0)
        transport = "wss" if self.scope.get("scheme") == "wss" else "ws"
        self.flow = Flow(transport, client[0], client[1], self.channel_name)
        delivery.websockets[self.channel_name] = self
        runtime.start_timers()  # a Daphne-only node times its own transactions
        await self.accept("sip")

    async def receive(self, text_data=None, bytes_data=None):
        data = bytes_data if bytes_data is not None else text_data.encode("utf-8")
        if data.strip(b"\r\n") == b"":
            return  # CRLF keep-alive (RFC 7118 §6 leaves keep-alives to the WebSocket layer)
        await runtime.get_server().receive(data, self.flow)

    async def disconnect(self, code):
        if self.flow is None:
            return
        delivery.websockets.pop(self.channel_name, None)
        await runtime.connection_closed(self.flow)

    async def sip_send(self, event):
        await self.send_sip(event["data"])

    async def send_sip(self, data: bytes) -> bool:
        """Send one SIP message; False when the socket closed before its disconnect event
        reached this consumer (Daphne then raises autobahn's Disconnected)."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        try:
            if text is None:
                await self.send(bytes_data=data)
            else:
                await self.send(text_data=text)
        except Disconnected:
            return False
        return True


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _origin_allowed(scope) -> bool:
    """Browsers send Origin; native clients do not, and are not checked (RFC 6455 §10.2)."""
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    allowed = settings.SIP["WS_ALLOWED_ORIGINS"]
    if "*" in allowed or origin in allowed:
        return True
    host = _header(scope, b"host") or ""
    return urlparse(origin).netloc.lower() == host.lower()
