"""Helpers for MESSAGE (RFC 3428) tests over real sockets: send one through the relay's 407
challenge, read what a recipient gets. Independent of the server's code, like `sipclient`.
"""

from __future__ import annotations

from tests.sipclient import Reply, SipClient, parse_challenges


def target(user: str) -> str:
    return user if user.startswith("sip:") else f"sip:{user}@localhost"


def message_args(to: str, body: str, content_type: str | None, headers=()) -> dict:
    extra = [f"Content-Type: {content_type}"] if content_type else []
    uri = target(to)
    return {"uri": uri, "to": uri, "body": body, "contact": None, "headers": [*extra, *headers]}


def start_message(
    sender: SipClient,
    to: str = "bob",
    body: str = "hello",
    *,
    content_type: str | None = "text/plain",
    headers=(),
    username: str | None = None,
    password: str | None = None,
    max_forwards: int = 70,
) -> None:
    """Send a MESSAGE, answer the 407 (RFC 3261 §22.3) and leave the final answer unread."""
    args = message_args(to, body, content_type, headers)

    def text(**auth) -> str:
        hops = f"Max-Forwards: {max_forwards}"
        return sender.request("MESSAGE", **auth, **args).replace("Max-Forwards: 70", hops)

    sender.send_raw(text())
    first = sender.recv()
    assert first.status == 407, first.text
    assert first.header("WWW-Authenticate") is None
    challenge = parse_challenges(first.text, "Proxy-Authenticate")[0]
    auth = sender.authorization(
        "MESSAGE", challenge, "MD5", password, username, args, "Proxy-Authenticate"
    )
    sender.send_raw(text(auth=auth))


def send_message(sender: SipClient, to: str = "bob", body: str = "hello", **kwargs) -> Reply:
    """An authenticated MESSAGE whose answer comes without a recipient's help."""
    start_message(sender, to, body, **kwargs)
    return sender.recv()


def relayed(client: SipClient, timeout: float = 5.0) -> Reply:
    message = client.recv(timeout)
    assert message.method == "MESSAGE", message.text
    return message


def vias(message: Reply) -> list[str]:
    return [v.strip() for value in message.all("Via") for v in value.split(",")]
