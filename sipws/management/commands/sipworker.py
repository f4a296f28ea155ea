"""`manage.py sipworker`: SIP UDP/TCP listeners and timers for the scale-out mode.

Daphne nodes (`daphne presence_project.asgi:application`) serve HTTP and WebSocket and
never open the SIP ports; what they send to UDP/TCP peers reaches this worker on the
`sipworker` channel of the shared (Redis) channel layer.
"""

import asyncio
import logging
import signal

from channels.layers import get_channel_layer
from django.core.management.base import BaseCommand

from ... import runtime
from ...core.flow import Flow
from ...transports.delivery import WORKER_CHANNEL, delivery

log = logging.getLogger("sipws.sipworker")


class Command(BaseCommand):
    help = "Run the SIP UDP/TCP listeners and timers (scale-out mode, beside Daphne nodes)."

    def handle(self, *args, **options):
        asyncio.run(self._main())

    async def _main(self):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await runtime.start_sip_listeners(self.stdout)
        relay = asyncio.create_task(self._relay())
        await stop.wait()
        relay.cancel()
        await runtime.drain()

    async def _relay(self):
        """Send what Daphne nodes hand us for UDP/TCP peers."""
        layer = get_channel_layer()
        while True:
            message = await layer.receive(WORKER_CHANNEL)
            try:
                fallback = tuple(message["fallback"]) if "fallback" in message else None
                await delivery.send(Flow.deserialize(message["flow"]), message["data"], fallback)
            except Exception:
                log.exception("relay of an outbound message failed")
