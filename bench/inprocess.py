"""CPU per PUBLISH lifecycle, SUBSCRIBE dialog or message-summary round trip, in-process.

No sockets, no load generator: the messages of bench/sipp/publish_lifecycle.xml,
subscribe_dialog.xml and message_summary.xml (no auth, the sender trusted as with
SIP_TRUSTED_PEERS) are fed to `SipServer.receive` one after the
other, NOTIFYs answered, on a freshly provisioned SQLite DATA_DIR. CPU time comes from
`time.process_time()`; each run prints µs per call, and the best run is the figure to
compare, since a shared machine only ever adds time. Small changes that a sipp search
cannot resolve show here (docs/benchmarks.md, "Where the time goes"):

    .venv/bin/python bench/inprocess.py --calls 300 --runs 10

CPU time on a shared virtual machine varies by a third from run to run. `--instructions`
counts instead the instructions each call takes, under valgrind's callgrind (Debian
package `valgrind`; about fifty times slower, so fewer calls do): the count repeats to a
tenth of a percent, and a change of one or two percent shows.

    .venv/bin/python bench/inprocess.py --calls 128 --runs 1 --together 32 --instructions
    .venv/bin/python bench/inprocess.py --only message-summary --together 32
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import USERS, provision  # noqa: E402
from sipmsg import DOMAIN  # noqa: E402

PIDF = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:{user}@{domain}">'
    '<tuple id="t1"><status><basic>{basic}</basic></status><note>n</note></tuple></presence>\n'
)
MWI = (
    "Messages-Waiting: {waiting}\r\nMessage-Account: sip:{user}@{domain}\r\n"
    "Voice-Message: 2/8 (0/2)\r\n"
)
PEER = ("127.0.0.1", 5999)  # calls run together each have their own port, counting up


def request(method: str, user: str, target: str, call: str, cseq: int, headers: list[str],
            body: str = "", to_tag: str = "", port: int = PEER[1]) -> bytes:  # fmt: skip
    to = f"<sip:{target}@{DOMAIN}>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} sip:{target}@{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/UDP {PEER[0]}:{port};branch=z9hG4bK-{call}-{cseq};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{DOMAIN}>;tag=f-{call}",
        f"To: {to}",
        f"Call-ID: {call}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:{user}@{PEER[0]}:{port}>",
        *headers,
        f"Content-Length: {len(body.encode())}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def answer(notify: bytes) -> bytes:
    """The 200 a watcher sends back for a NOTIFY."""
    head = notify.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")[1:]
    kept = [
        line for line in head if line.split(":", 1)[0] in ("Via", "From", "To", "Call-ID", "CSeq")
    ]
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(kept) + "\r\nContent-Length: 0\r\n\r\n").encode()


def header(message: bytes, name: bytes) -> str:
    match = re.search(rb"\r\n" + name + rb": *([^\r]+)", message)
    assert match, message[:300]
    return match.group(1).decode()


class Loop:
    """The server of this process with its sends captured instead of put on a socket."""

    def __init__(self) -> None:
        from sipws import runtime

        self.server = runtime.get_server()
        self.server.send = self._capture
        self.sent: dict[int, list[bytes]] = {}  # by the peer's port

    async def _capture(self, flow, data: bytes, fallback=None) -> bool:
        self.sent.setdefault(flow.remote_port, []).append(data)
        return True

    async def exchange(self, data: bytes, port: int) -> list[bytes]:
        from sipws.core.flow import Flow

        self.sent[port] = []
        await self.server.receive(data, Flow("udp", PEER[0], port))
        return self.sent.pop(port)

    async def final(self, data: bytes, port: int) -> bytes:
        """Send a request; its final response (asserted 200)."""
        [response] = [m for m in await self.exchange(data, port) if m.startswith(b"SIP/2.0")]
        assert response.startswith(b"SIP/2.0 200"), response[:200]
        return response

    async def publish_lifecycle(self, n: int, port: int) -> None:
        """Initial, refresh, modify, remove: the four PUBLISHes of one call."""
        user, call = f"u{n % USERS}", f"p{n}"

        def publish(cseq, etag="", basic="", expires=600):
            headers = ["Event: presence", f"Expires: {expires}"]
            headers += [f"SIP-If-Match: {etag}"] if etag else []
            headers += ["Content-Type: application/pidf+xml"] if basic else []
            body = PIDF.format(user=user, domain=DOMAIN, basic=basic) if basic else ""
            return request("PUBLISH", user, user, call, cseq, headers, body, port=port)

        etag = header(await self.final(publish(1, basic="open"), port), b"SIP-ETag")
        etag = header(await self.final(publish(2, etag), port), b"SIP-ETag")
        etag = header(await self.final(publish(3, etag, basic="closed"), port), b"SIP-ETag")
        await self.final(publish(4, etag, expires=0), port)

    async def subscribe_dialog(self, n: int, port: int) -> None:
        """SUBSCRIBE, its NOTIFY answered, un-SUBSCRIBE, the final NOTIFY answered."""
        user, target, call = f"u{n % USERS}", f"u{(n + 1) % USERS}", f"s{n}"
        headers = ["Event: presence", "Accept: application/pidf+xml"]
        subscribe = request(
            "SUBSCRIBE", user, target, call, 1, [*headers, "Expires: 600"], port=port
        )
        sent = await self.exchange(subscribe, port)
        [ok] = [m for m in sent if m.startswith(b"SIP/2.0 200")]
        [notify] = [m for m in sent if m.startswith(b"NOTIFY")]
        await self.exchange(answer(notify), port)
        to_tag = header(ok, b"To").rsplit("tag=", 1)[1].split(";")[0]
        unsubscribe = request(
            "SUBSCRIBE", user, target, call, 2, [*headers, "Expires: 0"], to_tag=to_tag, port=port
        )
        [final] = [m for m in await self.exchange(unsubscribe, port) if m.startswith(b"NOTIFY")]
        assert b"terminated" in final, final[:300]
        await self.exchange(answer(final), port)

    async def message_summary(self, n: int, port: int) -> None:
        """A mailbox's owner publishes it, subscribes, unsubscribes and removes it (the
        NOTIFYs answered), as bench/sipp/message_summary.xml does."""
        user, call = f"u{n % USERS}", f"m{n}"
        event = ["Event: message-summary"]
        body = MWI.format(waiting="yes", user=user, domain=DOMAIN)
        kind = "Content-Type: application/simple-message-summary"
        publish = request("PUBLISH", user, user, call, 1, [*event, "Expires: 600", kind], body,
                          port=port)  # fmt: skip
        etag = header(await self.final(publish, port), b"SIP-ETag")
        accept = "Accept: application/simple-message-summary"
        subscribe = request("SUBSCRIBE", user, user, call + "s", 2,
                            [*event, accept, "Expires: 600"], port=port)  # fmt: skip
        sent = await self.exchange(subscribe, port)
        [ok] = [m for m in sent if m.startswith(b"SIP/2.0 200")]
        [notify] = [m for m in sent if m.startswith(b"NOTIFY")]
        assert b"Messages-Waiting: yes" in notify, notify[:300]
        await self.exchange(answer(notify), port)
        to_tag = header(ok, b"To").rsplit("tag=", 1)[1].split(";")[0]
        unsubscribe = request("SUBSCRIBE", user, user, call + "s", 3,
                              [*event, accept, "Expires: 0"], to_tag=to_tag, port=port)  # fmt: skip
        [final] = [m for m in await self.exchange(unsubscribe, port) if m.startswith(b"NOTIFY")]
        assert b"terminated" in final, final[:300]
        await self.exchange(answer(final), port)
        remove = request("PUBLISH", user, user, call, 4,
                         [*event, "Expires: 0", f"SIP-If-Match: {etag}"], port=port)  # fmt: skip
        await self.final(remove, port)


class CpuTime:
    unit = "µs"

    def start(self) -> None:
        self.started = time.process_time()

    def stop(self) -> float:
        return (time.process_time() - self.started) * 1e6


class Instructions:
    """Instructions run between start and stop, counted by the callgrind this process
    runs under (`--instructions`): instrumentation is switched on for the measured calls
    only, and each run's counts are dumped to a file of their own and read back."""

    unit = "instructions"

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def start(self) -> None:
        self._control("--instr=on")

    def stop(self) -> float:
        self._control("--instr=off")
        before = set(self.folder.iterdir())
        self._control("--dump")
        [dump] = set(self.folder.iterdir()) - before
        totals = re.search(r"^totals: (\d+)", dump.read_text(), re.MULTILINE)
        return float(totals[1])

    @staticmethod
    def _control(option: str) -> None:
        command = ["callgrind_control", option, str(os.getpid())]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"callgrind_control {option}: {done.stderr.strip()}")


async def measure(
    loop: Loop, name: str, calls: int, runs: int, together: int, meter
) -> list[float]:
    """What a call costs (`meter`: µs of CPU, or instructions), per run; `together` calls
    at a time, as a loaded server has several requests waiting on each turn of its loop."""
    from sipws.runtime import freeze_startup_heap

    call = getattr(loop, name)

    async def calls_from(first: int, count: int) -> None:
        for group in range(first, first + count, together):
            size = min(together, first + count - group)
            await asyncio.gather(*(call(group + i, PEER[1] + i) for i in range(size)))

    await calls_from(0, 100)  # warm-up: caches, the statements' first plans
    freeze_startup_heap()  # as the server does once started
    results, n = [], 100
    for _ in range(runs):
        meter.start()
        await calls_from(n, calls)
        results.append(meter.stop() / calls)
        n += calls
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per run")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--only", choices=["publish", "subscribe", "message-summary"], help="one scenario"
    )
    parser.add_argument(
        "--together", type=int, default=1, help="calls run at once (default 1: one at a time)"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per call under valgrind's callgrind instead of CPU time",
    )
    args = parser.parse_args()
    if args.instructions and UNDER_CALLGRIND not in os.environ:
        sys.exit(_under_callgrind())
    data_dir = Path(tempfile.mkdtemp(prefix="sipws-inprocess-"))
    provision(data_dir, USERS)
    os.environ.update(
        DATA_DIR=str(data_dir),
        SIP_DOMAINS=DOMAIN,
        SIP_RATE_LIMIT="0",
        SIP_TRUSTED_PEERS=f"{PEER[0]}/32",
        PRESENCE_DEFAULT_POLICY="allow",
        DJANGO_SETTINGS_MODULE="presence_project.settings",
    )
    try:
        import django

        django.setup()
        asyncio.run(run_all(args))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


UNDER_CALLGRIND = "SIPWS_CALLGRIND_DIR"  # set for the copy of this script callgrind runs


def _under_callgrind() -> int:
    """Run this script again under callgrind, instrumentation off until `Instructions`
    switches it on; its exit status."""
    if shutil.which("valgrind") is None:
        print("--instructions needs valgrind (Debian package valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sipws-callgrind-") as folder:
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={folder}/callgrind.out", "--log-file=/dev/null",
            sys.executable, *sys.argv,
        ]  # fmt: skip
        return subprocess.run(command, env={**os.environ, UNDER_CALLGRIND: folder}).returncode


async def run_all(args) -> None:
    loop = Loop()
    folder = os.environ.get(UNDER_CALLGRIND)
    meter = Instructions(folder) if folder else CpuTime()
    scenarios = {
        "publish": "publish_lifecycle",
        "subscribe": "subscribe_dialog",
        "message-summary": "message_summary",
    }
    for key, name in scenarios.items():
        if args.only in (None, key):
            results = await measure(loop, name, args.calls, args.runs, args.together, meter)
            runs = " ".join(f"{r:.0f}" for r in results)
            print(f"{name}: best {min(results):.0f} {meter.unit}/call; runs {runs}", flush=True)


if __name__ == "__main__":
    main()
