"""WebSocket load driver (SIP over WebSocket, RFC 7118): many connections, one JSON line out.

register     closed loop: C connections each re-REGISTER (digest) as soon as answered
open         handshake + REGISTER with digest per second, measured at fill levels of
             already open (and registered) connections
subscribers  server memory per registered and subscribed connection (RSS from /proc)

--url takes several comma-separated URLs (the nodes of a cluster): connection i goes to
URL i mod n, so the connections are spread evenly over them.

  python bench/ws_driver.py register --url ws://127.0.0.1:8000/ws --connections 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import websockets
from sipmsg import DOMAIN, Reply, Ua, answer, percentile

TIMEOUT = 10.0


class WsUa:
    """One SIP user agent on its own WebSocket connection, one request outstanding."""

    def __init__(self, ws, user: str) -> None:
        self.ws = ws
        self.ua = Ua(user, "ws", f"{user}.invalid")
        self.notifies = 0

    @classmethod
    async def open(cls, url: str, user: str) -> WsUa:
        ws = await websockets.connect(
            url, subprotocols=["sip"], compression=None, ping_interval=None, open_timeout=TIMEOUT
        )
        return cls(ws, user)

    async def transact(self, method: str, uri: str, **kwargs) -> Reply:
        """Send a request, answer one 401, return the final response."""
        for _ in range(2):
            await self.ws.send(self.ua.request(method, uri, **kwargs))
            reply = await asyncio.wait_for(self._final(), TIMEOUT)
            if not self.ua.learn(reply):
                break
        return reply

    async def _final(self) -> Reply:
        while True:
            reply = await self._next()
            if reply is not None and reply.status >= 200:
                return reply

    async def _next(self) -> Reply | None:
        """The next response; a NOTIFY (maybe ahead of the 200 it follows) is answered."""
        reply = Reply(await self.ws.recv())
        if reply.status is not None:
            return reply
        self.notifies += 1
        await self.ws.send(answer(reply))
        return None

    async def register(self) -> Reply:
        return await self.transact("REGISTER", f"sip:{DOMAIN}", headers=("Expires: 600",))

    async def subscribe(self, presentity: str) -> Reply:
        return await self.transact(
            "SUBSCRIBE",
            presentity,
            to=presentity,
            call_id=self.ua.call_id + "-sub",
            headers=("Event: presence", "Accept: application/pidf+xml", "Expires: 600"),
        )

    async def drain_notifies(self, count: int) -> None:
        """Read (and answer) NOTIFYs until `count` arrived."""
        while self.notifies < count:
            await self._next()


def user(index: int) -> str:
    return f"u{index}"


async def open_many(urls: list[str], users: list[str], concurrency: int, subscribe: bool = False):
    """Open and register (and subscribe) connections, user i on URL i mod n; return them with
    timings."""
    gate = asyncio.Semaphore(concurrency)
    opened, latencies, failures = [], [], 0

    async def one(url: str, name: str) -> None:
        nonlocal failures
        async with gate:
            start, client = time.perf_counter(), None
            try:
                client = await WsUa.open(url, name)
                ok = (await client.register()).status == 200
                if ok and subscribe:
                    target = f"sip:{user(int(name[1:]) + 1)}@{DOMAIN}"
                    ok = (await client.subscribe(target)).status in (200, 202)
                    await asyncio.wait_for(client.drain_notifies(1), TIMEOUT)
            except (OSError, TimeoutError, websockets.WebSocketException):
                ok = False
            if ok:
                opened.append(client)
                latencies.append(time.perf_counter() - start)
            else:
                failures += 1
                if client is not None:
                    await client.ws.close()

    start = time.perf_counter()
    await asyncio.gather(*(one(urls[i % len(urls)], name) for i, name in enumerate(users)))
    return opened, latencies, failures, time.perf_counter() - start


async def close_all(clients: list[WsUa]) -> None:
    await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)


async def register_load(urls: list[str], connections: int, seconds: float) -> dict:
    users = [user(i) for i in range(connections)]
    clients, _, failures, _ = await open_many(urls, users, concurrency=50)
    latencies: list[float] = []
    errors = failures
    deadline = time.perf_counter() + seconds

    async def loop(client: WsUa) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                ok = (await client.register()).status == 200
            except (TimeoutError, websockets.WebSocketException):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1
                return

    start = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in clients))
    elapsed = time.perf_counter() - start
    await close_all(clients)
    return {
        "mode": "register",
        "connections": connections,
        "requests": len(latencies),
        "failed": errors,
        "rate": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def open_rate(urls: list[str], levels: list[int], batch: int, concurrency: int) -> dict:
    """Open `batch` connections at each fill level; the fill in between is opened alike."""
    open_now: list[WsUa] = []
    results = []
    for level in levels:
        fill = [user(len(open_now) + i) for i in range(max(0, level - len(open_now)))]
        clients, _, _, _ = await open_many(urls, fill, concurrency)
        open_now += clients
        measured = [user(len(open_now) + i) for i in range(batch)]
        clients, latencies, failures, elapsed = await open_many(urls, measured, concurrency)
        results.append(
            {
                "fill": level,
                "open_now": len(open_now),
                "opened": len(clients),
                "failed": failures,
                "rate": len(clients) / elapsed,
                "p50_ms": percentile(latencies, 0.5) * 1000,
                "p99_ms": percentile(latencies, 0.99) * 1000,
            }
        )
        open_now += clients
    await close_all(open_now)
    return {"mode": "open", "batch": batch, "levels": results}


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def subscribers(urls: list[str], pid: int, count: int, concurrency: int) -> dict:
    # Warm-up first: the first connections pay for imports, caches and pools, not per client.
    warm, _, _, _ = await open_many(
        urls, [user(count + 1 + i) for i in range(50)], concurrency, True
    )
    await close_all(warm)
    await asyncio.sleep(2)
    before = rss_kb(pid)
    clients, latencies, failures, elapsed = await open_many(
        urls, [user(i) for i in range(count)], concurrency, subscribe=True
    )
    await asyncio.sleep(2)  # let the server finish the NOTIFY transactions
    after = rss_kb(pid)
    await close_all(clients)
    return {
        "mode": "subscribers",
        "subscribed": len(clients),
        "failed": failures,
        "rss_before_kb": before,
        "rss_after_kb": after,
        "kb_per_subscriber": (after - before) / max(1, len(clients)),
        "open_rate": len(clients) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["register", "open", "subscribers"])
    parser.add_argument("--url", required=True, help="one URL, or several comma-separated")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--levels", default="0,1000,5000", help="fill levels for open")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--pid", type=int, help="server pid, for subscribers")
    args = parser.parse_args()
    urls = args.url.split(",")
    if args.mode == "register":
        work = register_load(urls, args.connections, args.seconds)
    elif args.mode == "open":
        levels = [int(level) for level in args.levels.split(",")]
        work = open_rate(urls, levels, args.batch, args.concurrency)
    else:
        work = subscribers(urls, args.pid, args.connections, args.concurrency)
    print(json.dumps(run_loop(work)), flush=True)


def run_loop(work):
    # uvloop keeps the driver's own CPU share low: it runs on the same two cores.
    try:
        import uvloop
    except ImportError:
        return asyncio.run(work)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(work)


if __name__ == "__main__":
    sys.exit(main())
