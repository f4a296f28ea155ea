"""`make cluster`: the scale-out mode on one machine, for trying it and for benchmarks.

Two Daphne nodes (HTTP and SIP over WebSocket on 127.0.0.1:8001 and :8002) and one
sipworker (SIP UDP and TCP on 127.0.0.1:5060), on the local PostgreSQL (database `sipws`,
made if missing, migrated) and Redis. Every line of output is prefixed by its process;
Ctrl-C stops all three, and so does any of them stopping.

Settings come from the environment as for any node (README, "Scale-out"); the defaults
here are DATABASE_URL=postgres://postgres@127.0.0.1:5432/sipws and
REDIS_URL=redis://127.0.0.1:6379/0. All three share DATA_DIR, hence the secret key.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as db:
        if not db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            db.execute(f'CREATE DATABASE "{name}"')
            print(f"cluster: created database {name}", flush=True)


def pump(name: str, process: subprocess.Popen) -> None:
    for line in process.stdout:
        sys.stdout.write(f"{name:>8} | {line}")
        sys.stdout.flush()


def main() -> int:
    env = {
        **os.environ,
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sipws"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "SIP_UDP_BIND": os.environ.get("SIP_UDP_BIND", "127.0.0.1:5060"),
        "SIP_TCP_BIND": os.environ.get("SIP_TCP_BIND", "127.0.0.1:5060"),
        "PYTHONUNBUFFERED": "1",
    }
    ensure_database(env["DATABASE_URL"])
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    commands = {"worker": ([*manage, "sipworker"], env)}
    for number, port in enumerate((8001, 8002), 1):
        daphne = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port)]
        daphne += ["--websocket_timeout", "-1", "presence_project.asgi:application"]
        commands[f"daphne{number}"] = (daphne, {**env, "HTTP_BIND": f"127.0.0.1:{port}"})
    processes = {}
    for name, (command, process_env) in commands.items():
        processes[name] = subprocess.Popen(
            command,
            cwd=ROOT,
            env=process_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=pump, args=(name, processes[name]), daemon=True).start()
    print(
        "cluster: HTTP + WebSocket on http://127.0.0.1:8001 and :8002 (/ws), "
        "SIP UDP/TCP on 127.0.0.1:5060; Ctrl-C stops it",
        flush=True,
    )
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    while not stopping.wait(0.5):
        if any(process.poll() is not None for process in processes.values()):
            break
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
    return 0 if stopping.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
