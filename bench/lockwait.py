"""How long another connection waits to write to SQLite while sipp loads the server.

The engine's jobs share one transaction per turn of the loop (services/dbthread), and
hold SQLite's write lock while they run. An admin saving a user, the REST API or
`manage.py sipuser` must still get a turn under load. This starts the bench's server
(provisioned as bench/run.py does, no auth), runs sipp's PUBLISH lifecycle at a fixed
rate, and meanwhile writes from a connection of its own (BEGIN IMMEDIATE, one UPDATE of
an account, COMMIT) five times a second, timing each write:

    .venv/bin/python bench/lockwait.py --rate 400 --seconds 20
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import DOMAIN, SIPP_NO_AUTH, USERS, _stat_lines, provision, sipp_command  # noqa: E402

from tests.serverproc import ServerProcess  # noqa: E402

WRITES_PER_SECOND = 5


def timed_writes(database: Path, until: float) -> tuple[list[float], list[str]]:
    """Milliseconds each write waited and took; the errors of those that failed."""
    waits, errors = [], []
    writer = sqlite3.connect(database, timeout=20, isolation_level=None)
    n = 0
    while time.monotonic() < until:
        start = time.monotonic()
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute(
                "UPDATE sipws_sipaccount SET enabled = 1 WHERE username = ?", (f"u{n % USERS}",)
            )
            writer.execute("COMMIT")
            waits.append((time.monotonic() - start) * 1000)
        except sqlite3.OperationalError as error:
            errors.append(str(error))
        n += 1
        time.sleep(1 / WRITES_PER_SECOND)
    writer.close()
    return waits, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=400, help="PUBLISH calls/s")
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sipws-lockwait-"))
    try:
        provision(work / "data", USERS)
        server = ServerProcess(
            work / "data", SIP_DOMAINS=DOMAIN, SIP_RATE_LIMIT="0", SIP_TRUSTED_PEERS="127.0.0.1/32"
        ).start()
        try:
            database = work / "data" / "db.sqlite3"
            command = sipp_command(
                SIPP_NO_AUTH["publish"], work, server.udp_port, args.rate, args.seconds
            )
            sipp = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(2)  # past sipp's start
            waits, errors = timed_writes(database, time.monotonic() + args.seconds - 4)
            sipp.wait(timeout=args.seconds + 60)
        finally:
            server.stop()
        header, last = _stat_lines(work / "sipp-stat.csv")
        calls = dict(zip(header, last, strict=False))
        print(
            f"sipp at {args.rate} calls/s for {args.seconds} s: "
            f"{calls.get('SuccessfulCall(C)')} calls done, {calls.get('FailedCall(C)')} failed, "
            f"{calls.get('Retransmissions(C)')} retransmissions"
        )
        if not waits:
            print(f"no write succeeded; errors: {errors[:3]}")
            return 1
        waits.sort()
        print(
            f"{len(waits)} writes from another connection, {len(errors)} failed: waited "
            f"p50 {statistics.median(waits):.1f} ms, p90 {waits[int(len(waits) * 0.9)]:.1f} ms, "
            f"max {waits[-1]:.1f} ms"
        )
        return 1 if errors else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
