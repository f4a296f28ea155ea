"""Just enough SIP for the Python load drivers: requests with digest, replies, NOTIFY answers.

Written from the RFCs (as tests/sipclient.py is), not from the server's code, so a driver
measures the server as any client sees it.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sipclient import Reply, digest_response, parse_challenges  # noqa: E402

DOMAIN = "localhost"
PASSWORD = "bench"

__all__ = ["DOMAIN", "PASSWORD", "Reply", "Ua", "percentile"]


class Ua:
    """One user agent's request state: Call-ID, CSeq, tag and the digest challenge it holds.

    A challenge is kept and reused with a rising nonce count (RFC 7616 §3.4), as real
    clients do, so only the first request of a UA pays the 401 round trip.
    """

    def __init__(self, user: str, transport: str, sent_by: str) -> None:
        self.user, self.transport, self.sent_by = user, transport, sent_by
        self.aor = f"sip:{user}@{DOMAIN}"
        self.call_id = secrets.token_hex(8)
        self.tag = secrets.token_hex(4)
        self.cseq = 0
        self.challenge: dict | None = None
        self.nc = 0

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{self.sent_by};transport={self.transport}>"

    def request(
        self,
        method: str,
        uri: str,
        *,
        to: str | None = None,
        to_tag: str = "",
        call_id: str | None = None,
        headers: tuple[str, ...] = (),
        body: str = "",
    ) -> str:
        self.cseq += 1
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/{self.transport.upper()} {self.sent_by};"
            f"branch=z9hG4bK{secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f"From: <{self.aor}>;tag={self.tag}",
            f"To: <{to or self.aor}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id or self.call_id}",
            f"CSeq: {self.cseq} {method}",
            f"Contact: {self.contact}",
            *headers,
        ]
        if self.challenge is not None:
            self.nc += 1
            auth = digest_response(
                method, uri, self.user, self.challenge["realm"], PASSWORD,
                self.challenge["nonce"], nc=self.nc,
            )  # fmt: skip
            lines.append(f"Authorization: {auth}")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def learn(self, reply: Reply) -> bool:
        """Take the MD5 challenge of a 401; True when the request should be sent again."""
        if reply.status != 401:
            return False
        md5 = [c for c in parse_challenges(reply.text) if c.get("algorithm", "MD5") == "MD5"]
        self.challenge, self.nc = (md5 or [None])[0], 0
        return self.challenge is not None


def answer(request: Reply, status: int = 200, reason: str = "OK") -> str:
    """The response to a request the server sent us (a NOTIFY), per RFC 3261 §8.2.6."""
    copied = [
        f"{name}: {value}"
        for name, value in request.headers
        if name in ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")
    ]
    return "\r\n".join([f"SIP/2.0 {status} {reason}", *copied, "Content-Length: 0"]) + "\r\n\r\n"


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
