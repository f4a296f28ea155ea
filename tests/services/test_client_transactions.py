"""Our own requests (NOTIFY) through SipServer with injected time: retransmit, Timer F."""

import asyncio
import time

from sipws.core.flow import Flow
from sipws.core.message import parse_message
from sipws.services.dispatch import ServerConfig, SipServer

UDP = Flow("udp", "127.0.0.1", 40000)
TCP = Flow("tcp", "127.0.0.1", 40001, "tcp-1")
NOTIFY = (
    b"NOTIFY sip:bob@127.0.0.1:40000 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKn1\r\n\r\n"
)


def run(coroutine):
    return asyncio.run(coroutine)


def make_server():
    sent, finals = [], []

    async def send(flow, data, fallback=None):
        sent.append((flow, data))
        return True

    async def on_final(status):
        finals.append(status)

    server = SipServer(ServerConfig(domains=["localhost"], secret=b"k" * 32), send)
    return server, sent, finals, on_final


def test_udp_notify_is_retransmitted_then_times_out_as_408():
    server, sent, finals, on_final = make_server()
    start = time.time()
    assert run(server.send_request(UDP, NOTIFY, "z9hG4bKn1", on_final))
    for offset in (0.6, 1.6, 3.6, 7.6):  # Timer E: 0.5, 1, 2, 4 s apart
        run(server.handle_timers(start + offset))
    assert len(sent) == 5 and all(data == NOTIFY for _, data in sent)
    assert finals == []
    run(server.handle_timers(start + 33))  # Timer F = 64 * T1
    assert finals == [408]
    run(server.handle_timers(start + 60))
    assert finals == [408]  # reported once


def test_a_final_response_stops_retransmissions_and_is_reported_once():
    server, sent, finals, on_final = make_server()
    start = time.time()
    run(server.send_request(UDP, NOTIFY, "z9hG4bKn1", on_final))
    response = (
        b"SIP/2.0 481 Call/Transaction Does Not Exist\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKn1\r\nFrom: <sip:a@x>;tag=1\r\n"
        b"To: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 NOTIFY\r\n\r\n"
    )
    run(server.receive(response, UDP))
    run(server.receive(response, UDP))  # a retransmitted response
    run(server.handle_timers(start + 40))
    assert finals == [481] and len(sent) == 1
    assert parse_message(response).status == 481


def test_tcp_notify_is_not_retransmitted_but_still_times_out():
    server, sent, finals, on_final = make_server()
    start = time.time()
    run(server.send_request(TCP, NOTIFY, "z9hG4bKn2", on_final))
    for offset in (0.6, 1.6, 3.6, 7.6):
        run(server.handle_timers(start + offset))
    assert len(sent) == 1
    run(server.handle_timers(start + 33))
    assert finals == [408]


def test_a_response_to_another_nodes_request_is_passed_on_by_its_branch():
    server, sent, finals, on_final = make_server()
    server.config.node_tag = "aaaa0001"
    forwarded = []

    async def forward(tag, data):
        forwarded.append((tag, data))
        return True

    server.forward = forward

    def response(branch: str) -> bytes:
        return (
            b"SIP/2.0 200 OK\r\n"
            b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=" + branch.encode() + b"\r\n"
            b"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 NOTIFY\r\n\r\n"
        )

    other, ours, gone = "z9hG4bK.bbbb0002.01", server.new_branch(), "z9hG4bK.aaaa0001.02"
    run(server.send_request(UDP, NOTIFY, ours, on_final))
    run(server.receive(response(other), UDP))
    run(server.receive(response(gone), UDP))  # ours, but no such transaction: dropped
    assert forwarded == [("bbbb0002", response(other))]
    run(server.receive_forwarded(response(ours)))
    assert finals == [200]
    run(server.receive_forwarded(response(other)))  # never passed on a second time
    assert len(forwarded) == 1
