"""A real scale-out cluster for tests: sipworkers and Daphne nodes as OS processes, on the
machine's PostgreSQL (127.0.0.1:5432, user postgres, trust) and Redis (127.0.0.1:6379).

Each test module gets a database of its own, cloned from a template migrated once per
session (`CREATE DATABASE ... TEMPLATE`), and Redis database REDIS_DB, flushed before
and after. Workers bind port 0 for UDP and TCP, and a second worker shares those ports
(SO_REUSEPORT). Each Daphne node serves a listening socket the test bound on port 0
(`daphne --fd`), and is ready when /healthz answers 200.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import redis

from tests.serverproc import terminate

ROOT = Path(__file__).resolve().parents[2]
PG = "postgresql://postgres@127.0.0.1:5432/{}"
REDIS = "redis://127.0.0.1:6379/{}"
REDIS_DB = 11  # the cluster tests' own Redis database
SECRET = "cluster-tests-secret-key-" + "x" * 40
PASSWORD = "secret"
LISTENING = re.compile(r"SIP (UDP|TCP) listening on \S+:(\d+)")


def require_backends() -> None:
    """Fail (never skip) with what to start when PostgreSQL or Redis does not answer."""
    import pytest  # here, so that bench/cluster_bench.py can use this module without pytest

    try:
        psycopg.connect(PG.format("postgres"), connect_timeout=3).close()
    except psycopg.Error as error:
        pytest.fail(
            "the cluster tests need PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth; "
            f"`tools/install-system-deps.sh` sets it up): {error}",
            pytrace=False,
        )
    try:
        redis.Redis.from_url(REDIS.format(REDIS_DB), socket_timeout=3).ping()
    except redis.RedisError as error:
        pytest.fail(
            "the cluster tests need Redis on 127.0.0.1:6379 "
            f"(`tools/install-system-deps.sh` starts it): {error}",
            pytrace=False,
        )


def admin(*statements: str) -> None:
    with psycopg.connect(PG.format("postgres"), autocommit=True) as db:
        for statement in statements:
            db.execute(statement)


def flush_redis() -> None:
    redis.Redis.from_url(REDIS.format(REDIS_DB)).flushdb()


class Process:
    """A child process whose merged output is read on a thread and kept."""

    def __init__(self, name: str, args: list[str], env: dict, pass_fds=()) -> None:
        self.name = name
        self.output: list[str] = []
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            pass_fds=pass_fds,
        )
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    @property
    def log(self) -> str:
        return "".join(self.output)

    def wait_for(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name}: {what} did not happen:\n{self.log}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        terminate(self.process, sig, timeout)
        self._reader.join(2)

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        self.stop(signal.SIGKILL)


class Worker(Process):
    """`manage.py sipworker`: SIP UDP and TCP, the timers, expiry."""

    def __init__(self, name: str, env: dict) -> None:
        super().__init__(name, [sys.executable, "manage.py", "sipworker"], env)
        ports: dict[str, int] = {}

        def bound() -> bool:
            for line in self.output:
                match = LISTENING.search(line)
                if match:
                    ports[match.group(1)] = int(match.group(2))
            return len(ports) == 2

        self.wait_for(bound, 30, "listening on UDP and TCP")
        self.udp_port, self.tcp_port = ports["UDP"], ports["TCP"]


class DaphneNode(Process):
    """`daphne presence_project.asgi:application`: HTTP and SIP over WebSocket."""

    def __init__(self, name: str, env: dict, udp_port: int, tcp_port: int) -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        self.http_port = listener.getsockname()[1]
        self.udp_port, self.tcp_port = udp_port, tcp_port  # the workers', for SIP clients
        daphne = str(Path(sys.executable).parent / "daphne")
        args = [daphne, "--fd", str(listener.fileno()), "-v", "0", "--websocket_timeout", "-1"]
        super().__init__(
            name, [*args, "presence_project.asgi:application"], env, (listener.fileno(),)
        )
        listener.close()  # the child holds it now
        self.wait_for(lambda: self.get("/healthz")[0] == 200, 30, "/healthz answering 200")

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path: str) -> tuple[int, str]:
        return self.call("GET", path)

    def call(self, method: str, path: str, body: str | None = None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=5)
        try:
            connection.request(method, path, body, headers or {})
            response = connection.getresponse()
            return response.status, response.read().decode()
        except OSError:
            return 0, ""
        finally:
            connection.close()

    def metric(self, name: str, **labels: str) -> float:
        """A sample of this node's /metrics (0 when absent)."""
        _, text = self.get("/metrics")
        wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        sample = f"{name}{{{wanted}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
        return 0.0


class Cluster:
    """The processes of one test module, their database and what to start them with."""

    def __init__(self, tmp_path: Path, database: str, **env: str) -> None:
        self.tmp_path = tmp_path
        self.database = database
        self.env = {
            **os.environ,
            "DATABASE_URL": PG.format(database),
            "REDIS_URL": REDIS.format(REDIS_DB),
            "DJANGO_SECRET_KEY": SECRET,
            "SIP_DOMAINS": "localhost",
            "PRESENCE_DEFAULT_POLICY": "allow",
            # Leases short enough for a test to watch one run out, long enough for a
            # busy CI machine's pauses.
            "SIP_NODE_HEARTBEAT": "0.5",
            "SIP_NODE_LEASE": "3",
            "PRESENCE_SUBSCRIBE_MIN_EXPIRES": "1",
            "PRESENCE_PUBLISH_MIN_EXPIRES": "1",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.workers: list[Worker] = []
        self.nodes: list[DaphneNode] = []
        self._count = 0

    def _env(self, name: str, **extra: str) -> dict:
        data_dir = self.tmp_path / name  # its own control socket
        data_dir.mkdir(exist_ok=True)
        return {**self.env, "DATA_DIR": str(data_dir), **extra}

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{kind}{self._count}"

    @property
    def ports(self) -> tuple[int, int]:
        return (self.workers[0].udp_port, self.workers[0].tcp_port) if self.workers else (0, 0)

    def start_worker(self) -> Worker:
        """A worker; every one after the first shares the first one's ports."""
        udp, tcp = self.ports
        name = self._name("worker")
        env = self._env(name, SIP_UDP_BIND=f"127.0.0.1:{udp}", SIP_TCP_BIND=f"127.0.0.1:{tcp}")
        worker = Worker(name, env)
        self.workers.append(worker)
        return worker

    def start_node(self) -> DaphneNode:
        udp, tcp = self.ports
        name = self._name("daphne")
        env = self._env(name, SIP_UDP_BIND=f"127.0.0.1:{udp}", SIP_TCP_BIND=f"127.0.0.1:{tcp}")
        node = DaphneNode(name, env, udp, tcp)
        self.nodes.append(node)
        return node

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(PG.format(self.database), autocommit=True) as db:
            return db.execute(sql, params).fetchall()

    def wait_for(self, predicate, timeout: float = 5.0, interval: float = 0.05):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(interval)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log}" for p in [*self.workers, *self.nodes])

    def stop(self) -> None:
        for process in [*self.nodes, *self.workers]:
            process.stop()


def new_database(template: str) -> str:
    name = f"sipws_test_{secrets.token_hex(4)}"
    admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def drop_database(name: str) -> None:
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
