"""`manage.py sipworker`: SIP UDP/TCP listeners and timers for the scale-out mode.

Daphne nodes (`daphne presence_project.asgi:application`) serve HTTP and WebSocket and
never open the SIP ports; what they send to UDP/TCP peers reaches a worker on the shared
`sipworker` channel of the Redis channel layer (or, for a TCP connection, on the node
channel of the worker holding it). Several workers may run: they share the SIP ports
(SO_REUSEPORT), every one sweeps expiry (services/expiry keeps it exactly once), and a
response reaching another process than the one that sent the request is passed on by
the node named in its Via branch (services/dispatch).
"""

import asyncio
import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ... import runtime
from ...transports.delivery import WORKER_CHANNEL

log = logging.getLogger("sipws.sipworker")


class Command(BaseCommand):
    help = "Run the SIP UDP/TCP listeners and timers (scale-out mode, beside Daphne nodes)."

    def handle(self, *args, **options):
        if not settings.REDIS_URL:
            raise CommandError("sipworker needs REDIS_URL (the channel layer Daphne nodes share)")
        asyncio.run(self._main())

    async def _main(self):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        self.stdout.write(f"node: {runtime.NODE_ID}\n")
        await runtime.start_sip_listeners(self.stdout, reuse_port=True)
        relay = asyncio.create_task(runtime.serve_channel(WORKER_CHANNEL))
        await stop.wait()
        relay.cancel()
        await runtime.drain()
