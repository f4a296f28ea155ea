"""Start the real server (`manage.py runsip`) as an OS process on free ports, for tests."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"(HTTP and WebSocket \(/ws\)|SIP UDP|SIP TCP) listening on (\S+):(\d+)")


def terminate(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Send `sig` if it still runs; SIGKILL after `timeout` seconds; reap it."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ServerProcess:
    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "DATA_DIR": str(data_dir),
            "HTTP_BIND": "127.0.0.1:0",
            "SIP_UDP_BIND": "127.0.0.1:0",
            "SIP_TCP_BIND": "127.0.0.1:0",
            "SIP_DOMAINS": "localhost,example.com",
            # Tests of subscriptions assume they are accepted; authorization tests set
            # confirm (the shipped default) or write pres-rules themselves.
            "PRESENCE_DEFAULT_POLICY": "allow",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []
        self.http_port = self.udp_port = self.tcp_port = 0

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def start(self, timeout: float = 30) -> ServerProcess:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runsip"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        found: dict[str, int] = {}
        ready = threading.Event()

        def pump():
            for line in self.process.stdout:
                self.output.append(line)
                match = READY.search(line)
                if match:
                    found[match.group(1)] = int(match.group(3))
                    if len(found) == 3:
                        ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or len(found) != 3:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.output))
        self.http_port = found["HTTP and WebSocket (/ws)"]
        self.udp_port, self.tcp_port = found["SIP UDP"], found["SIP TCP"]
        return self

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if self.process is None:
            return None
        terminate(self.process, sig, timeout)
        code, self.process = self.process.returncode, None
        return code

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with sqlite3.connect(self.data_dir / "db.sqlite3", timeout=10) as db:
            return db.execute(sql, params).fetchall()

    def records(self, sql: str, params: tuple = ()) -> list[dict]:
        """Like rows(), each row as a dict keyed by column name."""
        with sqlite3.connect(self.data_dir / "db.sqlite3", timeout=10) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(sql, params).fetchall()]

    def wait_for(self, predicate, timeout: float = 5.0, interval: float = 0.05):
        """Poll for an effect the server makes asynchronously (a deleted row, ...)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(interval)


def provision(data_dir: Path, users: list[tuple[str, str]], **env: str) -> ServerProcess:
    """Migrate a fresh database and add SIP users in one process each."""
    proc = ServerProcess(data_dir, **env)
    proc.manage("migrate", "-v0")
    script = "from sipws.services.accounts import create_account\n" + "".join(
        f"create_account({identity!r}, {password!r})\n" for identity, password in users
    )
    proc.manage("shell", "-c", script)
    return proc
