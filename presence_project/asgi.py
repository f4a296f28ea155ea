"""ASGI entry point: HTTP goes to Django, WebSocket `/ws` to the SIP consumer."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "presence_project.settings")
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from sipws.runtime import StartsNode  # noqa: E402
from sipws.transports.websocket import SipWebSocketConsumer  # noqa: E402

application = StartsNode(
    ProtocolTypeRouter(
        {
            "http": django_application,
            "websocket": URLRouter([path("ws", SipWebSocketConsumer.as_asgi())]),
        }
    )
)
