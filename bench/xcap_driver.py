"""XCAP GET closed loop with Digest or Basic, for comparing the two: one JSON line out.

wrk (bench/xcap.lua) can send only Basic: Digest wants a new nonce count per request. Here
C threads each keep one HTTP connection and GET user u<i>'s pres-rules document as soon
as the previous answer arrives; Digest takes one 401 per connection, then reuses the
challenge with a rising nonce count, as real clients do.

  python bench/xcap_driver.py --url http://127.0.0.1:8000 --auth digest --connections 1
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import threading
import time
from urllib.parse import urlsplit

from sipmsg import DOMAIN, PASSWORD, percentile

from tests.xcapapi.client import digest_header, parse_challenges


def loop(args, i: int, deadline: float, out: dict) -> None:
    user, parts = f"u{i}", urlsplit(args.url)
    path = f"/xcap-root/pres-rules/users/sip:{user}@{DOMAIN}/index"
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    basic = "Basic " + base64.b64encode(f"{user}@{DOMAIN}:{PASSWORD}".encode()).decode()
    challenge, nc, latencies, failed = None, 0, [], 0
    while time.monotonic() < deadline:
        headers = {}
        if args.auth == "basic":
            headers["Authorization"] = basic
        elif challenge:
            nc += 1
            headers["Authorization"] = digest_header("GET", path, user, PASSWORD, challenge, nc=nc)
        start = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status == 401 and challenge is None:  # the first Digest round trip
            challenge, nc = parse_challenges(response.headers.get_all("WWW-Authenticate"))[0], 0
            continue
        latencies.append(time.perf_counter() - start)
        failed += response.status != 200
    connection.close()
    out[i] = (latencies, failed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--auth", choices=["basic", "digest"], default="digest")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    out: dict = {}
    start = time.monotonic()
    threads = [
        threading.Thread(target=loop, args=(args, i, start + args.seconds, out))
        for i in range(args.connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - start
    latencies = [value for values, _ in out.values() for value in values]
    failed = sum(f for _, f in out.values())
    result = {
        "requests": len(latencies) - failed,
        "failed": failed,
        "rate": len(latencies) / wall,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
