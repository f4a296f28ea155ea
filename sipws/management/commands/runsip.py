"""`manage.py runsip`: the embedded default, one process for HTTP, WebSocket, UDP and TCP.

Daphne's server runs in-process (as Channels' own runserver does) and the SIP UDP/TCP
listeners and timers join the same event loop, so an in-process channel layer serves.
"""

import asyncio
import logging

from daphne.endpoints import build_endpoint_description_strings
from daphne.server import Server
from django.conf import settings
from django.core.management.base import BaseCommand

from ... import runtime

log = logging.getLogger("sipws.runsip")

SETTINGS_SHOWN = [
    "HTTP_BIND",
    "UDP_BIND",
    "TCP_BIND",
    "DOMAINS",
    "ADVERTISED_ADDRESS",
    "REGISTER_MIN_EXPIRES",
    "REGISTER_MAX_EXPIRES",
    "REGISTER_DEFAULT_EXPIRES",
    "RATE_LIMIT",
    "MAX_MESSAGE_SIZE",
    "WS_ALLOWED_ORIGINS",
]


class ReportingServer(Server):
    """Daphne's Server, printing the HTTP address actually bound (port 0 in tests)."""

    stdout = None

    def listen_success(self, port):
        super().listen_success(port)
        host = port.getHost()
        runtime.set_advertised("ws", f"{host.host}:{host.port}")
        self.stdout.write(f"HTTP and WebSocket (/ws) listening on {host.host}:{host.port}\n")
        self.stdout.flush()


class Command(BaseCommand):
    help = "Run the presence server: Daphne (HTTP + SIP over WebSocket) plus SIP UDP and TCP."

    def handle(self, *args, **options):
        self._print_settings()
        dropped = runtime.forget_previous_run()
        if dropped:
            self.stdout.write(f"dropped {dropped} WebSocket registrations of the previous run\n")
        from presence_project.asgi import application

        host, port = runtime.split_bind(settings.SIP["HTTP_BIND"])
        server = ReportingServer(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            websocket_timeout=-1,  # SIP flows live as long as the client keeps them
            ready_callable=self._start_sip,
            verbosity=0,
        )
        server.stdout = self.stdout
        server.run()

    def _start_sip(self):
        from twisted.internet import reactor
        from twisted.internet.defer import Deferred

        # SIGTERM: finish the SIP requests in flight before Daphne closes the loop.
        reactor.addSystemEventTrigger(
            "before",
            "shutdown",
            lambda: Deferred.fromFuture(asyncio.ensure_future(runtime.drain())),
        )
        loop = asyncio.get_event_loop()
        task = loop.create_task(runtime.start_sip_listeners(self.stdout))
        task.add_done_callback(self._check_started)

    def _check_started(self, task):
        if task.exception() is not None:
            log.error("SIP listeners failed to start: %s", task.exception())
            from twisted.internet import reactor

            reactor.stop()

    def _print_settings(self):
        db = settings.DATABASES["default"]
        self.stdout.write("presence server settings:\n")
        for key in SETTINGS_SHOWN:
            env_name = key if key == "HTTP_BIND" else f"SIP_{key}"
            self.stdout.write(f"  {env_name}: {settings.SIP[key]}\n")
        self.stdout.write(f"  database: {db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}\n")
        self.stdout.write(f"  channel layer: {settings.CHANNEL_LAYERS['default']['BACKEND']}\n")
        self.stdout.write(f"  node: {runtime.NODE_ID}\n")
        self.stdout.flush()
