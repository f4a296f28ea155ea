"""The control socket: how `manage.py presence` asks the running server to act.

Kamailio's kamcmd talks to the server over a Unix socket (its ctl module); so does this
server. An action that sends NOTIFYs (terminate, refresh, ...) must run in the process
that owns the flows: the WebSocket connections, the UDP and TCP sockets, and the client
transactions that retransmit a NOTIFY until the watcher answers. The process that runs
the SIP listeners (`runsip`, or `sipworker` when scaled out) listens on a Unix socket in
`DATA_DIR`, readable by its own user only: whoever may read the database may ask.

One JSON object per connection each way: `{"action": "terminate", "arguments": {...}}`
answered by `{"ok": true, "result": {...}}` or `{"ok": false, "status": 404, "error": "..."}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger("sipws.control")
MAX_REQUEST = 64 * 1024
Handler = Callable[[dict], Awaitable[dict]]


async def serve(path: str, handler: Handler) -> asyncio.AbstractServer | None:
    """Listen on `path`; None (and a warning) when it cannot be bound."""
    socket_path = Path(path)
    try:
        socket_path.unlink(missing_ok=True)  # left by a server that was killed
        previous = os.umask(0o077)
        try:
            server = await asyncio.start_unix_server(
                lambda reader, writer: _answer(reader, writer, handler), path=path
            )
        finally:
            os.umask(previous)
    except OSError as error:
        log.warning("control socket %s not available: %s", path, error)
        return None
    return server


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler) -> None:
    try:
        try:
            request = json.loads(await asyncio.wait_for(_read_all(reader), timeout=5))
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError as error:
            reply = {"ok": False, "status": 400, "error": f"bad request: {error}"}
        else:
            reply = await handler(request)
        writer.write(json.dumps(reply).encode())
        await writer.drain()
    except Exception:
        log.exception("control request failed")
    finally:
        writer.close()


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    data = b""
    while chunk := await reader.read(65536):
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError("request too large")
    return data


def call(path: str, request: dict, timeout: float = 30.0) -> dict:
    """Send one request to the server listening on `path` and return its answer.

    Raises OSError (FileNotFoundError, ConnectionRefusedError) when no server listens.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(json.dumps(request).encode())
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return json.loads(b"".join(chunks))
