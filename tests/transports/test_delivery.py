"""What the channel layer refuses (channels_redis limits): a message over
SIP_LAYER_MAX_MESSAGE_SIZE, a full channel, an unreachable layer. Each is caught and
counted by reason, never raised; a WebSocket flow that cannot take a message counts as
gone, a UDP/TCP message for the workers as a lost datagram (its transaction retries)."""

import asyncio

import pytest
from autobahn.exception import Disconnected
from channels.exceptions import ChannelFull

from sipws.core.flow import Flow
from sipws.transports import delivery as module
from sipws.transports.delivery import Delivery, node_channel, tcp_owner
from sipws.transports.websocket import LOCAL_CHANNEL_PREFIX, SipWebSocketConsumer

CONSUMER = "specific.0123abcd!4567ef"
WS_FLOW = Flow("ws", "192.0.2.1", 40000, CONSUMER)
UDP_FLOW = Flow("udp", "192.0.2.2", 5060)


class Layer:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.sent: list[tuple[str, dict]] = []

    async def send(self, channel: str, message: dict) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append((channel, message))


@pytest.fixture
def layer(monkeypatch):
    def install(error: BaseException | None = None) -> Layer:
        fake = Layer(error)
        monkeypatch.setattr(module, "get_channel_layer", lambda: fake)
        return fake

    return install


def test_a_message_over_the_limit_is_refused_and_counted(layer):
    fake, delivery = layer(), Delivery()
    delivery.max_layer_message = 100

    sent = asyncio.run(delivery.send(WS_FLOW, b"x" * 101))

    assert sent is False
    assert fake.sent == []
    assert delivery.failures == {"full": 0, "too_large": 1, "error": 0}
    assert asyncio.run(delivery.send(WS_FLOW, b"x" * 100)) is True


def test_a_full_consumer_channel_counts_as_a_gone_flow(layer):
    layer(ChannelFull())
    delivery = Delivery()

    assert asyncio.run(delivery.send(WS_FLOW, b"NOTIFY")) is False
    assert delivery.failures["full"] == 1


def test_a_full_or_unreachable_worker_channel_is_a_lost_datagram(layer):
    delivery = Delivery()
    layer(ChannelFull())
    assert asyncio.run(delivery.send(UDP_FLOW, b"NOTIFY")) is True
    layer(ConnectionError("redis is down"))
    assert asyncio.run(delivery.send(UDP_FLOW, b"NOTIFY")) is True
    assert delivery.failures == {"full": 1, "too_large": 0, "error": 1}


def test_udp_goes_to_the_workers_and_tcp_to_the_worker_holding_the_connection(layer):
    fake, delivery = layer(), Delivery()
    tcp = Flow("tcp", "192.0.2.3", 5060, "tcp-c0ffee01-7")
    delivery.live_nodes = frozenset({"c0ffee01", "feed0001"})  # from the leases

    asyncio.run(delivery.send(UDP_FLOW, b"A"))
    asyncio.run(delivery.send(tcp, b"B", ("192.0.2.3", 5060)))
    delivery.live_nodes = frozenset({"feed0001"})  # that worker's lease ran out
    asyncio.run(delivery.send(tcp, b"C"))

    assert [channel for channel, _ in fake.sent] == [
        "sipworker",
        node_channel("c0ffee01"),
        "sipworker",  # any worker: it dials the Contact if it can
    ]
    assert fake.sent[1][1]["fallback"] == ["192.0.2.3", 5060]
    assert tcp_owner("tcp-c0ffee01-7") == "c0ffee01"
    assert tcp_owner("tcp-3") is None


def test_a_response_is_passed_on_to_the_node_named_in_its_branch(layer):
    fake, delivery = layer(), Delivery()

    assert asyncio.run(delivery.forward_response("c0ffee01", b"SIP/2.0 200 OK")) is True
    assert fake.sent == [
        (node_channel("c0ffee01"), {"type": "sip.response", "data": b"SIP/2.0 200 OK"})
    ]


def test_a_closed_consumer_of_this_process_refuses_a_message_at_once(layer):
    """Embedded, a WebSocket flow is named locally: once its consumer is gone, a NOTIFY
    for it fails at once instead of waiting in a channel nobody reads."""
    fake, delivery = layer(), Delivery()
    flow = Flow("ws", "192.0.2.1", 40000, f"{LOCAL_CHANNEL_PREFIX}1234.7")

    assert asyncio.run(delivery.send(flow, b"NOTIFY")) is False
    assert fake.sent == []
    assert delivery.failures == {"full": 0, "too_large": 0, "error": 0}


def test_a_websocket_that_closed_under_a_send_counts_as_gone():
    """Daphne raises Disconnected for a send racing the socket's close, before the
    consumer has seen its disconnect event: the flow is gone, nothing is raised."""
    consumer, delivery, sent = SipWebSocketConsumer(), Delivery(), []

    async def closed(message):
        raise Disconnected("Attempt to send on a closed protocol")

    async def open_socket(message):
        sent.append(message)

    delivery.websockets[CONSUMER] = consumer
    consumer.base_send = closed
    assert asyncio.run(delivery.send(WS_FLOW, b"SIP/2.0 200 OK\r\n\r\n")) is False
    consumer.base_send = open_socket
    assert asyncio.run(delivery.send(WS_FLOW, b"SIP/2.0 200 OK\r\n\r\n")) is True
    assert sent == [{"type": "websocket.send", "text": "SIP/2.0 200 OK\r\n\r\n"}]
