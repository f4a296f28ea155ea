"""Flows: the transport path a message came on and a reply must go back on (RFC 5626 §3)."""

from __future__ import annotations

from dataclasses import dataclass

RELIABLE = frozenset({"tcp", "tls", "ws", "wss"})


@dataclass(frozen=True, slots=True)
class Flow:
    """`transport` is udp/tcp/ws/wss; `connection` names the WebSocket or TCP connection
    (a Channels channel name or a TCP connection id) and is empty for UDP."""

    transport: str
    remote_host: str
    remote_port: int
    connection: str = ""

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE

    @property
    def via_transport(self) -> str:
        return self.transport.upper()

    @property
    def remote(self) -> str:
        host = f"[{self.remote_host}]" if ":" in self.remote_host else self.remote_host
        return f"{host}:{self.remote_port}"

    def serialize(self) -> str:
        """One string that fits a database column and routes back to this flow."""
        return f"{self.transport}|{self.remote_host}|{self.remote_port}|{self.connection}"

    @classmethod
    def deserialize(cls, text: str) -> Flow:
        transport, host, port, connection = text.split("|", 3)
        return cls(transport, host, int(port), connection)
