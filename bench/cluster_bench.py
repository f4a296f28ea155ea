"""`make bench` scenarios against the scale-out cluster, called from bench/run.py.

Each scenario starts its own cluster as OS processes on loopback: two Daphne nodes and one
`manage.py sipworker` (tests/cluster/nodes.py starts them as the cluster tests do), on a
fresh PostgreSQL database provisioned like run.py's DATA_DIR, and a Redis database that no
other run uses. All ports are free ones picked at start. The database is dropped and the
Redis database flushed when the scenario ends, whatever happened.

cluster-ws         closed-loop REGISTER with digest over WebSocket (bench/ws_driver.py):
                   every connection on node 1, then as many spread over both nodes
cluster-publish    sipp's PUBLISH lifecycle over UDP against the worker
cluster-subscribe  sipp's SUBSCRIBE dialog over UDP against the worker
"""

from __future__ import annotations

import json
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import psycopg
import redis
from run import (
    BENCH,
    QUICK,
    SIPP,
    STEP_SECONDS,
    USERS,
    Bench,
    Step,
    best,
    cpu_seconds,
    provision,
    search,
    sipp_step,
    wait_idle,
)

from tests.cluster.nodes import PG, REDIS, Cluster, admin, drop_database

# Redis databases a bench run may claim; tests/cluster uses 11 and `make cluster` 0.
REDIS_DBS = range(12, 16)
CLAIM_KEY = "sipws-bench:claim"
CLAIM_SECONDS = 4 * 3600  # a crashed run's claim lapses; its leftover keys are harmless
# The shipped defaults where nodes.py shortens them for tests; no rate limit, as in run.py.
SETTINGS = {
    "SIP_RATE_LIMIT": "0",
    "SIP_NODE_HEARTBEAT": "2",
    "SIP_NODE_LEASE": "10",
    "PRESENCE_SUBSCRIBE_MIN_EXPIRES": "60",
    "PRESENCE_PUBLISH_MIN_EXPIRES": "60",
}
WS_CONNECTIONS = [20] if QUICK else [10, 50, 200]  # quick: 10 per node when spread, as run.py
# The worker on PostgreSQL fails sipp's 100 calls/s, run.py's first step, on a shared
# 2-core machine: start lower, so that the search finds a rate instead of a failure.
SIPP_START = 20


# The cluster ------------------------------------------------------------------------------


def require_backends() -> None:
    """Raise with what is missing: the scenario then reports an error row, never a pass."""
    try:
        psycopg.connect(PG.format("postgres"), connect_timeout=3).close()
    except psycopg.Error as error:
        raise RuntimeError(
            "PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) does not answer: "
            + one_line(error)
        ) from None
    try:
        redis.Redis.from_url(REDIS.format(0), socket_timeout=3).ping()
    except redis.RedisError as error:
        raise RuntimeError(f"Redis on 127.0.0.1:6379 does not answer: {one_line(error)}") from None


def one_line(error: Exception) -> str:
    return " ".join(str(error).split())  # the report's table takes no line breaks


def claim_redis_db() -> int:
    """The first Redis database of REDIS_DBS that no other run holds (SET NX of a key)."""
    token = secrets.token_hex(8)
    for index in REDIS_DBS:
        client = redis.Redis.from_url(REDIS.format(index), socket_timeout=3)
        if client.set(CLAIM_KEY, token, nx=True, ex=CLAIM_SECONDS):
            return index
    raise RuntimeError(f"every Redis database {REDIS_DBS.start}-{REDIS_DBS.stop - 1} is in use")


def flush_redis_db(index: int) -> None:
    """Drop the run's channels, nonce counts and leases, and its claim with them."""
    redis.Redis.from_url(REDIS.format(index), socket_timeout=3).flushdb()


@contextmanager
def running_cluster(bench: Bench, name: str) -> Iterator[Cluster]:
    """Two Daphne nodes and one worker on a database of their own; all gone afterwards."""
    require_backends()
    work = bench.work / f"cluster-{name}"
    work.mkdir()
    database = f"sipws_bench_{secrets.token_hex(4)}"
    redis_db = claim_redis_db()
    cluster = None
    try:
        admin(f'CREATE DATABASE "{database}"')
        provision(work / "provision", USERS, DATABASE_URL=PG.format(database))
        cluster = Cluster(work, database, REDIS_URL=REDIS.format(redis_db), **SETTINGS)
        cluster.start_worker()  # first: the nodes learn its ports
        cluster.start_node()
        cluster.start_node()
        bench.log(f"    cluster: database {database}, Redis db {redis_db}, {describe(cluster)}")
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
            if "Traceback" in cluster.logs():
                bench.log("    the cluster logged errors: see the raw output")
                bench.raw.append("cluster logs (they hold errors):\n" + tail(cluster.logs(), 120))
        drop_database(database)
        flush_redis_db(redis_db)


def describe(cluster: Cluster) -> str:
    nodes = ", ".join(f"node{i} HTTP :{node.http_port}" for i, node in enumerate(cluster.nodes, 1))
    return f"{nodes}, worker SIP UDP :{cluster.workers[0].udp_port}"


def pids(cluster: Cluster) -> dict[str, int]:
    """The cluster's processes by the names the report gives them."""
    named = {f"node{i}": node for i, node in enumerate(cluster.nodes, 1)}
    named["worker"] = cluster.workers[0]  # one worker in these scenarios
    return {name: process.process.pid for name, process in named.items()}


def backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds of the PostgreSQL backends serving the cluster's database, by pid."""
    with psycopg.connect(PG.format("postgres"), autocommit=True) as db:
        rows = db.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))
        backends = [pid for (pid,) in rows]
    seconds = {}
    for pid in backends:
        try:
            seconds[pid] = cpu_seconds(pid)
        except OSError:  # ended meanwhile
            pass
    return seconds


def wait_cluster_idle(cluster: Cluster) -> None:
    for pid in pids(cluster).values():
        wait_idle(pid)


def tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


# WebSocket throughput ------------------------------------------------------------------


def measured_on_cluster(cluster: Cluster, command: list[str], timeout: float):
    """Run a load generator; return its result, each process's CPU share and its own.

    `postgres` is the share of the database's backends (those alive at the end), since in
    the cluster the database is a process of its own that can take a core's share."""
    processes = pids(cluster)
    before = {name: cpu_seconds(pid) for name, pid in processes.items()}
    backends_before = backend_cpu(cluster.database)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    driver = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    shares = {name: (cpu_seconds(pid) - before[name]) / wall for name, pid in processes.items()}
    backends = backend_cpu(cluster.database).items()
    postgres = sum(seconds - backends_before.get(pid, 0) for pid, seconds in backends)
    return result, shares, postgres / wall, driver / wall


def ws_register_step(bench: Bench, cluster: Cluster, urls: list[str], connections: int) -> Step:
    command = [
        sys.executable, str(BENCH / "ws_driver.py"), "register", "--url", ",".join(urls),
        "--connections", str(connections), "--seconds", str(STEP_SECONDS),
    ]  # fmt: skip
    result, shares, postgres, driver_cpu = measured_on_cluster(cluster, command, STEP_SECONDS + 120)
    bench.raw.append("$ " + " ".join(command) + "\n" + result.stdout.strip())
    if result.returncode != 0:
        raise RuntimeError(f"ws_driver.py failed: {result.stderr.strip().splitlines()[-1:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    cpu = ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    return Step(
        rate=out["rate"],
        done=out["requests"],
        failed=out["failed"],
        server_cpu=sum(shares.values()),
        driver_cpu=driver_cpu,
        detail=f"{connections} connections on {len(urls)} node(s), p50 {out['p50_ms']:.1f} ms "
        f"p99 {out['p99_ms']:.1f} ms; CPU {cpu}, postgres {postgres:.0%}, driver {driver_cpu:.0%}",
    )


def websocket_register(bench: Bench, title: str) -> None:
    """The same closed loop with every connection on node 1, then spread over both."""
    one: list[Step] = []
    spread: list[Step] = []
    with running_cluster(bench, "ws") as cluster:
        urls = [node.ws_url for node in cluster.nodes]
        # Node 1 alone, then spread, at each count: the shared machine's load drifts alike.
        for connections in WS_CONNECTIONS:
            for steps, targets in ((one, urls[:1]), (spread, urls)):
                wait_cluster_idle(cluster)
                steps.append(ws_register_step(bench, cluster, targets, connections))
                bench.log("    " + steps[-1].line())
    top_one, top_spread = best(one), best(spread)
    ws_row(bench, f"{title}, all on node 1", top_one, one)
    verdict = ""
    if top_one and top_spread:
        above = "above" if top_spread.rate > top_one.rate else "NOT above"
        verdict = f"{top_spread.rate / top_one.rate:.2f} x node 1 alone: {above} one node's"
    target = "issue 7 target: spread over both nodes above one node's"
    ws_row(bench, f"{title}, spread over both nodes", top_spread, spread, verdict or target)


def ws_row(bench: Bench, title: str, top: Step | None, steps: list[Step], reference="") -> None:
    if top is None:
        bench.row(title, "failed", steps[-1].line().strip(), reference)
    else:
        bench.row(title, f"{top.rate:.0f} requests/s", top.detail, reference)


# sipp over UDP against the worker ---------------------------------------------------------


def sipp_on_worker(bench: Bench, title: str, name: str) -> None:
    with running_cluster(bench, name) as cluster:
        worker = cluster.workers[0]

        def step(rate: int) -> Step:
            wait_cluster_idle(cluster)
            # sipp_step reads .udp_port and .process.pid, which a Worker has as a server does.
            return sipp_step(bench, worker, SIPP[name], rate)

        steps = search(step, bench, start=SIPP_START)
    top = best(steps)
    if top is None:
        bench.row(title, "fails at the lowest step", steps[-1].line().strip())
        return
    bench.raw.append(f"sipp screen at {top.rate:.0f} calls/s:\n{tail(top.screen, 45)}")
    cpu = f"worker CPU {top.server_cpu:.0%} of a core, sipp {top.driver_cpu:.0%}"
    bench.row(title, f"{top.rate:.0f} calls/s", cpu)


def scenarios(sipp: bool) -> list:
    """(key, title, run) for run.py's list; the sipp ones only where sipp is installed."""
    prefix = "Cluster (2 Daphne nodes + 1 sipworker, PostgreSQL, Redis):"
    out = [("cluster-ws", f"{prefix} REGISTER with digest over WebSocket", websocket_register)]
    if sipp:
        title = f"{prefix} PUBLISH lifecycle over UDP (sipp, to the worker)"
        out.append(("cluster-publish", title, partial(sipp_on_worker, name="publish")))
        title = f"{prefix} SUBSCRIBE dialog over UDP (sipp, to the worker)"
        out.append(("cluster-subscribe", title, partial(sipp_on_worker, name="subscribe")))
    return out
