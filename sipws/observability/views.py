"""`/healthz` for load balancers and `/metrics` for Prometheus.

/healthz answers 200 when the database and the channel layer both answer, 503 naming the
one that did not. /metrics serves the counters of this process and gauges of the stored
state, read from the database at scrape time (the same on every node of a cluster);
it answers only the addresses in METRICS_ALLOWED_IPS, or a bearer METRICS_TOKEN.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.http import HttpResponse, HttpResponseForbidden, JsonResponse
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..services.logonce import log_once

log = logging.getLogger("sipws.health")
CHANNEL_LAYER_TIMEOUT = 2.0


@require_safe
async def healthz(request):
    checks = {
        "database": await sync_to_async(_database_answers)(),
        "channel_layer": await _channel_layer_answers(),
    }
    status = 200 if all(value == "ok" for value in checks.values()) else 503
    return JsonResponse(checks, status=status)


def _database_answers() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        log_once(log, "health:db", "health check: database failed: %s", error)
        return "failed"
    return "ok"


async def _channel_layer_answers() -> str:
    """A message sent to a throwaway channel of this process comes back within the timeout."""
    try:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        async with asyncio.timeout(CHANNEL_LAYER_TIMEOUT):
            await layer.send(channel, {"type": "health.check"})
            message = await layer.receive(channel)
        if message.get("type") != "health.check":
            raise RuntimeError(f"unexpected message {message!r}")
    except Exception as error:
        log_once(log, "health:layer", "health check: channel layer failed: %r", error)
        return "failed"
    return "ok"


class StateCollector:
    """Gauges of what is stored, counted at scrape time, and this process's connections."""

    def collect(self):
        from ..models import ActiveWatcher, Registration
        from ..transports.delivery import delivery

        now = datetime.now(UTC)
        registrations = GaugeMetricFamily(
            "sip_registrations", "Contact bindings not expired, by transport.", labels=["transport"]
        )
        for row in (
            Registration.objects.filter(expires__gt=now)
            .values("transport")
            .annotate(count=Count("id"))
            .order_by()
        ):
            registrations.add_metric([row["transport"]], row["count"])
        yield registrations
        subscriptions = GaugeMetricFamily(
            "sip_subscriptions",
            "Subscriptions not expired, by event package and status.",
            labels=["event", "status"],
        )
        for row in (
            ActiveWatcher.objects.filter(expires__gt=now)
            .values("event", "status")
            .annotate(count=Count("id"))
            .order_by()
        ):
            subscriptions.add_metric([row["event"], row["status"]], row["count"])
        yield subscriptions
        yield GaugeMetricFamily(
            "sip_websocket_connections",
            "SIP-over-WebSocket connections open on this process.",
            value=len(delivery.websockets),
        )
        failures = CounterMetricFamily(
            "sip_channel_layer_send_failures",
            "Messages not handed to the channel layer on this process, by reason: full "
            "(ChannelFull), too_large (over SIP_LAYER_MAX_MESSAGE_SIZE), error (unreachable).",
            labels=["reason"],
        )
        for reason, count in delivery.failures.items():
            failures.add_metric([reason], count)
        yield failures


_state = CollectorRegistry(auto_describe=False)
_state.register(StateCollector())


@require_safe
def metrics(request):
    if not _may_scrape(request):
        return HttpResponseForbidden("metrics: address not allowed\n", content_type="text/plain")
    body = generate_latest(REGISTRY) + generate_latest(_state)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def _may_scrape(request) -> bool:
    token = settings.METRICS["TOKEN"]
    if token:
        given = request.META.get("HTTP_AUTHORIZATION", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    allowed = settings.METRICS["ALLOWED_IPS"]
    if "*" in allowed:
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in allowed)
