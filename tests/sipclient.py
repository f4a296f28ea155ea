"""A small SIP user agent for tests, over real UDP, TCP and WebSocket sockets.

Independent of the server's code on purpose: messages are written as text and digest
responses computed here from RFC 7616, so a test checks the server against the RFCs.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import uuid

import websockets.sync.client


def digest_response(
    method, uri, username, realm, password, nonce, algorithm="MD5", qop="auth", nc=1, cnonce=None
):
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm]
    hx = lambda text: h(text.encode()).hexdigest()  # noqa: E731
    cnonce = cnonce or secrets.token_hex(8)
    ha1 = hx(f"{username}:{realm}:{password}")
    ha2 = hx(f"{method}:{uri}")
    nc_hex = f"{nc:08x}"
    response = hx(f"{ha1}:{nonce}:{nc_hex}:{cnonce}:{qop}:{ha2}")
    return (
        f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm={algorithm}, qop={qop}, nc={nc_hex}, '
        f'cnonce="{cnonce}"'
    )


def parse_challenges(response: str, header="WWW-Authenticate") -> list[dict]:
    out = []
    for line in response.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == header.lower():
            out.append(dict(re.findall(r'(\w+)="?([^",]*)"?', value)))
    return out


class Reply:
    def __init__(self, text: str) -> None:
        self.text = text
        head = text.split("\r\n\r\n", 1)[0]
        self.start, *lines = head.split("\r\n")
        self.status = int(self.start.split()[1]) if self.start.startswith("SIP/2.0") else None
        self.headers: list[tuple[str, str]] = []
        for line in lines:
            name, _, value = line.partition(":")
            self.headers.append((name.strip().lower(), value.strip()))
        self.body = text.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in text else ""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    @property
    def method(self) -> str | None:
        """The method of a request the server sent (NOTIFY); None for a response."""
        return None if self.status is not None else self.start.split()[0]

    def __repr__(self) -> str:
        return f"<Reply {self.start!r}>"


class SipClient:
    """One SIP UA bound to one transport: 'udp', 'tcp' or 'ws'."""

    def __init__(
        self,
        transport: str,
        server,
        *,
        user="alice",
        domain="localhost",
        password="secret",
        timeout=5.0,
        ws_subprotocols=("sip",),
    ) -> None:
        self.transport, self.server = transport, server
        self.user, self.domain, self.password = user, domain, password
        self.call_id = uuid.uuid4().hex
        self.cseq = 0
        self.tag = secrets.token_hex(4)
        self.timeout = timeout
        self.nc = 0
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.settimeout(timeout)
        elif transport == "tcp":
            self.sock = socket.create_connection(("127.0.0.1", server.tcp_port), timeout=timeout)
            self.buffer = b""
        else:
            self.ws = websockets.sync.client.connect(
                server.ws_url, subprotocols=list(ws_subprotocols), open_timeout=timeout, legacy=True
            )
        self.local_port = self.sock.getsockname()[1] if transport != "ws" else 0

    @classmethod
    def on_accepted(cls, connection: socket.socket, server, *, user: str, timeout=5.0):
        """A TCP client over a connection the server opened to us (it dialled our Contact)."""
        client = cls.__new__(cls)
        client.transport, client.server, client.user, client.domain = (
            "tcp",
            server,
            user,
            "localhost",
        )
        client.password, client.timeout, client.sock, client.buffer = (
            "secret",
            timeout,
            connection,
            b"",
        )
        client.call_id, client.cseq, client.tag, client.nc = (
            uuid.uuid4().hex,
            0,
            secrets.token_hex(4),
            0,
        )
        client.local_port = connection.getsockname()[1]
        return client

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"

    def contact_uri(self) -> str:
        if self.transport == "ws":
            return f"sip:{self.user}@{self.tag}.invalid;transport=ws"
        return f"sip:{self.user}@127.0.0.1:{self.local_port};transport={self.transport}"

    def via(self) -> str:
        sent_by = (
            f"{self.tag}.invalid" if self.transport == "ws" else f"127.0.0.1:{self.local_port}"
        )
        return (
            f"SIP/2.0/{self.transport.upper()} {sent_by};branch=z9hG4bK{secrets.token_hex(8)};rport"
        )

    def send_raw(self, data: bytes | str) -> None:
        data = data.encode() if isinstance(data, str) else data
        if self.transport == "udp":
            self.sock.sendto(data, ("127.0.0.1", self.server.udp_port))
        elif self.transport == "tcp":
            self.sock.sendall(data)
        else:
            self.ws.send(data.decode())

    def recv(self, timeout: float | None = None) -> Reply:
        timeout = timeout or self.timeout
        if self.transport == "udp":
            self.sock.settimeout(timeout)
            return Reply(self.sock.recv(70000).decode())
        if self.transport == "ws":
            frame = self.ws.recv(timeout=timeout)
            return Reply(frame if isinstance(frame, str) else frame.decode())
        self.sock.settimeout(timeout)
        while True:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if sep:
                length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
                if len(rest) >= length:
                    self.buffer = rest[length:]
                    return Reply((head + sep + rest[:length]).decode())
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("TCP connection closed")
            self.buffer += chunk

    def try_recv(self, timeout: float) -> Reply | None:
        """The next message, or None when nothing arrives within `timeout` (a drop)."""
        try:
            return self.recv(timeout)
        except TimeoutError:
            return None

    def request(
        self,
        method: str,
        *,
        uri: str | None = None,
        headers: list[str] = (),
        body: str = "",
        contact: str | None = "default",
        expires: int | None = None,
        auth: str | None = None,
        to: str | None = None,
        cseq: int | None = None,
        to_tag: str | None = None,
    ) -> str:
        self.cseq = cseq if cseq is not None else self.cseq + 1
        uri = uri or (f"sip:{self.domain}" if method == "REGISTER" else self.aor)
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: {self.via()}",
            "Max-Forwards: 70",
            f"From: <{self.aor}>;tag={self.tag}",
            f"To: <{to or self.aor}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} {method}",
            "User-Agent: sipws-tests",
        ]
        if contact == "default":
            lines.append(f"Contact: <{self.contact_uri()}>")
        elif contact is not None:
            lines.append(f"Contact: {contact}")
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if auth:
            lines.append(auth)
        lines += list(headers)
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def send(self, method: str, **kwargs) -> Reply:
        self.send_raw(self.request(method, **kwargs))
        return self.recv()

    def send_authenticated(
        self, method: str, *, algorithm="MD5", password=None, username=None, **kwargs
    ) -> Reply:
        """Send, answer the challenge once with the chosen algorithm, return the final reply."""
        first = self.send(method, **kwargs)
        if first.status not in (401, 407):
            return first
        header = "WWW-Authenticate" if first.status == 401 else "Proxy-Authenticate"
        challenges = parse_challenges(first.text, header)
        chosen = next(c for c in challenges if c.get("algorithm", "MD5") == algorithm)
        return self.send(
            method,
            auth=self.authorization(method, chosen, algorithm, password, username, kwargs, header),
            **kwargs,
        )

    def authorization(
        self,
        method,
        chal,
        algorithm,
        password=None,
        username=None,
        kwargs=None,
        header="WWW-Authenticate",
        *,
        nc=1,
        cnonce=None,
    ):
        self.nc += 1
        uri = (kwargs or {}).get("uri") or (
            f"sip:{self.domain}" if method == "REGISTER" else self.aor
        )
        name = "Authorization" if header == "WWW-Authenticate" else "Proxy-Authorization"
        value = digest_response(
            method,
            uri,
            username or self.user,
            chal["realm"],
            password or self.password,
            chal["nonce"],
            algorithm,
            nc=nc,
            cnonce=cnonce,
        )
        return f"{name}: {value}"

    def answer(self, request: Reply, status: int = 200, reason: str = "OK") -> None:
        """Answer a request the server sent us (a NOTIFY) in its transaction (RFC 3261 §8.2.6)."""
        copied = [
            f"{name}: {value}"
            for name, value in request.headers
            if name in ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")
        ]
        self.send_raw(
            "\r\n".join([f"SIP/2.0 {status} {reason}", *copied, "Content-Length: 0"]) + "\r\n\r\n"
        )

    def close(self) -> None:
        if self.transport == "ws":
            self.ws.close()
        else:
            self.sock.close()
