"""NOTIFY fan-out: W UDP watchers of one presentity, whose publisher modifies it M times.

The publisher puts its send time in the PIDF note, so each watcher measures
PUBLISH→NOTIFY latency itself; every NOTIFY is answered 200 as a phone would. A 401 is
answered with digest, so the same run measures a server that asks for none (Kamailio,
ours with SIP_TRUSTED_PEERS). Prints one JSON line:

    python bench/fanout.py --port 5060 --watchers 500 --changes 100
    python bench/fanout.py --host 127.0.0.1 --port 5080 --watchers 500   # Kamailio
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time

from sipmsg import DOMAIN, Reply, Ua, answer, percentile
from ws_driver import run_loop

TIMEOUT = 10.0
STAMP = re.compile(r"<note>t=([\d.]+) seq=(\d+)</note>")


def pidf(user: str, seq: int) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:{user}@{DOMAIN}">'
        '<tuple id="bench"><status><basic>open</basic></status>'
        f"<note>t={time.time():.6f} seq={seq}</note></tuple></presence>"
    )


class UdpUa(asyncio.DatagramProtocol):
    """One SIP user agent on its own UDP socket, one request outstanding."""

    def __init__(self, user: str, on_notify=None) -> None:
        self.user, self.on_notify = user, on_notify
        self.ua: Ua | None = None
        self.reply: asyncio.Future | None = None
        self.seen: set[str] = set()  # CSeqs of NOTIFYs received: the rest are retransmissions
        self.retransmitted = 0

    @classmethod
    async def open(cls, server: tuple[str, int], user: str, on_notify=None) -> UdpUa:
        loop = asyncio.get_running_loop()
        _, ua = await loop.create_datagram_endpoint(
            lambda: cls(user, on_notify), local_addr=("127.0.0.1", 0), remote_addr=server
        )
        return ua

    def connection_made(self, transport) -> None:
        self.transport = transport
        port = transport.get_extra_info("sockname")[1]
        self.ua = Ua(self.user, "udp", f"127.0.0.1:{port}")

    def datagram_received(self, data: bytes, addr) -> None:
        now = time.time()
        reply = Reply(data.decode())
        if reply.status is None:
            self.transport.sendto(answer(reply).encode())
            cseq = reply.header("CSeq")
            if cseq in self.seen:
                self.retransmitted += 1
            else:
                self.seen.add(cseq)
                if self.on_notify is not None:
                    self.on_notify(reply, now)
        elif reply.status >= 200 and self.reply is not None and not self.reply.done():
            self.reply.set_result(reply)

    async def transact(self, method: str, uri: str, **kwargs) -> Reply:
        """Send a request (retransmitted per RFC 3261 Timer E), answer one 401."""
        for _ in range(2):
            reply = await self._send(self.ua.request(method, uri, **kwargs).encode())
            if not self.ua.learn(reply):
                return reply
        return reply

    async def _send(self, data: bytes) -> Reply:
        self.reply = asyncio.get_running_loop().create_future()
        interval, deadline = 0.5, time.monotonic() + TIMEOUT
        while True:
            self.transport.sendto(data)
            try:
                return await asyncio.wait_for(asyncio.shield(self.reply), interval)
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
                interval = min(interval * 2, 4.0)


async def fanout(
    server: tuple[str, int], watchers: int, changes: int, presentity: str, first: int
) -> dict:
    target = f"sip:{presentity}@{DOMAIN}"
    latencies: list[float] = []
    last_notify = 0.0

    def on_notify(reply: Reply, now: float) -> None:
        nonlocal last_notify
        stamp = STAMP.search(reply.body)
        if stamp and int(stamp.group(2)) > 0:  # seq 0 is the state before the changes
            latencies.append(now - float(stamp.group(1)))
            last_notify = now

    publisher = await UdpUa.open(server, presentity)
    reply = await publisher.transact(
        "PUBLISH", target, headers=_publish_headers(), body=pidf(presentity, 0)
    )
    etag = reply.header("SIP-ETag")
    if reply.status != 200 or not etag:
        raise SystemExit(f"initial PUBLISH failed: {reply.start}")

    gate = asyncio.Semaphore(50)

    async def watch(index: int) -> UdpUa:
        async with gate:
            ua = await UdpUa.open(server, f"u{first + index}", on_notify)
            headers = ("Event: presence", "Accept: application/pidf+xml", "Expires: 600")
            reply = await ua.transact("SUBSCRIBE", target, to=target, headers=headers)
            if reply.status not in (200, 202):
                raise SystemExit(f"SUBSCRIBE failed: {reply.start}")
            return ua

    uas = await asyncio.gather(*(watch(i) for i in range(watchers)))
    await asyncio.sleep(1)  # the initial NOTIFYs are not part of the measurement

    start, refused, first_refusals = time.time(), 0, []
    for seq in range(1, changes + 1):
        headers = (*_publish_headers(), f"SIP-If-Match: {etag}")
        reply = await publisher.transact(
            "PUBLISH", target, headers=headers, body=pidf(presentity, seq)
        )
        if reply.status != 200:
            refused += 1
            if len(first_refusals) < 3:  # the first one says why; the rest often follow it
                first_refusals.append(f"change {seq}: {reply.start}")
        etag = reply.header("SIP-ETag") or etag
    published = time.time()
    expected = watchers * changes
    deadline = time.monotonic() + 60
    while len(latencies) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    elapsed = max(last_notify, published) - start
    for ua in (publisher, *uas):
        ua.transport.close()
    return {
        "watchers": watchers,
        "changes": changes,
        "publish_refused": refused,
        "first_refusals": first_refusals,
        "notifies": len(latencies),
        "missing": expected - len(latencies),
        "retransmitted": sum(ua.retransmitted for ua in uas),
        "publish_rate": changes / (published - start),
        "notify_rate": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def _publish_headers() -> tuple[str, ...]:
    return ("Event: presence", "Expires: 600", "Content-Type: application/pidf+xml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="the server's SIP UDP address")
    parser.add_argument("--port", type=int, required=True, help="the server's SIP UDP port")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--presentity", default="fan", help="the publishing user")
    parser.add_argument("--first", type=int, default=0, help="watchers are users uFIRST...")
    args = parser.parse_args()
    server = (args.host, args.port)
    result = run_loop(fanout(server, args.watchers, args.changes, args.presentity, args.first))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
