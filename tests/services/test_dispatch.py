"""The request pipeline's own work around a handler: Via stamping (RFC 3261 §18.2.1), and
waiting for the requests in hand at a graceful stop."""

import asyncio

from sipws.core.flow import Flow
from sipws.core.headers import Via
from sipws.core.message import make_response, parse_message
from sipws.services.dispatch import ServerConfig, SipServer

OPTIONS = (
    b"OPTIONS sip:localhost SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP phone.example.com:5070;branch=z9hG4bKa1;rport, "
    b"SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp1\r\n"
    b"Via: SIP/2.0/UDP edge.example.com;branch=z9hG4bKe1\r\n"
    b"From: <sip:alice@localhost>;tag=f1\r\nTo: <sip:localhost>\r\n"
    b"Call-ID: v1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


def test_handlers_see_the_stamped_via_as_a_fresh_parse_of_the_headers_would():
    seen, sent = [], []

    async def send(flow, data, fallback=None):
        sent.append(data)
        return True

    async def handler(server, request, flow):
        seen.append(request)
        return make_response(request, 200)

    server = SipServer(ServerConfig(domains=["localhost"], secret=b"k" * 32), send)
    server.route("OPTIONS", handler)
    asyncio.run(server.receive(OPTIONS, Flow("udp", "192.0.2.7", 40123)))

    (request,) = seen
    top = request.top_via
    assert (top.param("received"), top.param("rport")) == ("192.0.2.7", "40123")
    reparsed = [Via.parse(value) for value in request.headers.get_all("Via")]
    assert request.vias == reparsed
    assert [via.branch for via in request.vias] == ["z9hG4bKa1", "z9hG4bKp1", "z9hG4bKe1"]
    response = parse_message(sent[0])
    assert response.status == 200
    assert [str(via) for via in response.vias] == [str(via) for via in reparsed]


def test_a_graceful_stop_waits_for_the_requests_being_handled():
    """`quiesce` returns once the message in hand is answered, and not before."""
    sent, release = [], None

    async def send(flow, data, fallback=None):
        sent.append(data)
        return True

    async def handler(server, request, flow):
        await release.wait()  # a database job or a slow peer, say
        return make_response(request, 200)

    async def main():
        nonlocal release
        release = asyncio.Event()
        server = SipServer(ServerConfig(domains=["localhost"], secret=b"k" * 32), send)
        server.route("OPTIONS", handler)
        handling = asyncio.create_task(server.receive(OPTIONS, Flow("udp", "192.0.2.7", 40123)))
        await asyncio.sleep(0)
        assert server.handling == 1
        await server.quiesce(0.1)  # still waiting: gives up at the timeout
        assert not handling.done() and sent == []
        release.set()
        await server.quiesce(5)
        assert handling.done() and server.handling == 0
        assert parse_message(sent[0]).status == 200

    asyncio.run(main())
