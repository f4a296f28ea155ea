"""Helpers for presence tests over real sockets: PIDF documents, SUBSCRIBE and PUBLISH
shortcuts, NOTIFY reading and answering, and snapshots of the presence tables.

Like `sipclient`, independent of the server's code: PIDF is built and read with lxml here,
headers are read as text.
"""

from __future__ import annotations

import re
import threading
import time

from lxml import etree

from tests.sipclient import Reply, SipClient

PIDF_NS = "urn:ietf:params:xml:ns:pidf"
PIDF_TYPE = "application/pidf+xml"
PRESENCE_TABLES = ("sipws_presentity", "sipws_activewatcher", "sipws_watcher")
# A SIP URI as a Contact carries it: <sip:host[:port][;params]> (RFC 3261 §25.1, loosely).
SIP_CONTACT = re.compile(
    r"^<sips?:(?:[^@<>\s]+@)?([\w.-]+|\[[0-9a-fA-F:.]+\])(?::(\d+))?(;[^<>]*)?>$"
)


def pidf(entity: str, tuple_id: str = "t1", basic: str = "open", note: str | None = None) -> str:
    note_xml = f"<note>{note}</note>" if note is not None else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="{PIDF_NS}" entity="{entity}">'
        f'<tuple id="{tuple_id}"><status><basic>{basic}</basic></status>{note_xml}</tuple>'
        "</presence>"
    )


def tuples(body: str) -> list[tuple[str, str, str | None]]:
    """(id, basic, note) of each tuple of a PIDF body, in document order."""
    root = etree.fromstring(body.encode())
    assert root.tag == f"{{{PIDF_NS}}}presence", body
    out = []
    for element in root.iterchildren(f"{{{PIDF_NS}}}tuple"):
        basic = element.findtext(f"{{{PIDF_NS}}}status/{{{PIDF_NS}}}basic")
        out.append((element.get("id"), basic, element.findtext(f"{{{PIDF_NS}}}note")))
    return out


def subscribe(
    client: SipClient,
    presentity: str = "sip:alice@localhost",
    *,
    expires: int | None = 600,
    event: str = "presence",
    headers: list[str] = (),
    **kwargs,
) -> Reply:
    """An authenticated SUBSCRIBE (in-dialog when `to_tag` is given); the final response."""
    return client.send_authenticated(
        "SUBSCRIBE",
        uri=presentity,
        to=presentity,
        expires=expires,
        headers=[f"Event: {event}", *headers] if event else list(headers),
        **kwargs,
    )


def publish(
    client: SipClient,
    body: str = "",
    *,
    expires: int | None = 600,
    etag: str | None = None,
    presentity: str | None = None,
    content_type: str = PIDF_TYPE,
    event: str = "presence",
    headers: list[str] = (),
    **kwargs,
) -> Reply:
    """An authenticated PUBLISH of `body` for the client's own AOR (or `presentity`)."""
    extra = [f"Event: {event}"] if event else []
    if etag is not None:
        extra.append(f"SIP-If-Match: {etag}")
    if body:
        extra.append(f"Content-Type: {content_type}")
    presentity = presentity or client.aor
    return client.send_authenticated(
        "PUBLISH",
        uri=presentity,
        to=presentity,
        expires=expires,
        body=body,
        headers=[*extra, *headers],
        **kwargs,
    )


def watch(client: SipClient, presentity: str = "sip:alice@localhost", **kwargs):
    """Subscribe and read the immediate NOTIFY: (the 2xx, the NOTIFY)."""
    response = subscribe(client, presentity, **kwargs)
    assert response.status in (200, 202), response.text
    return response, next_notify(client)


def unsubscribe(client: SipClient, response: Reply, presentity: str = "sip:alice@localhost", **kw):
    """End the dialog `response` created: (the 200, the final NOTIFY)."""
    reply = subscribe(client, presentity, expires=0, to_tag=tag(response.header("To")), **kw)
    return reply, next_notify(client)


def next_notify(client: SipClient, *, status: int | None = 200, timeout: float = 5) -> Reply:
    """The next message, which must be a NOTIFY; answered with `status` unless None."""
    message = client.recv(timeout)
    assert message.method == "NOTIFY", message.text
    if status is not None:
        client.answer(message, status, "OK" if status == 200 else "Error")
    return message


def assert_silent(client: SipClient, wait: float = 0.5) -> None:
    message = client.try_recv(wait)
    assert message is None, message.text


def state(notify: Reply) -> tuple[str, dict[str, str]]:
    """Subscription-State as ('active', {'expires': '599'})."""
    value, *params = [part.strip() for part in notify.header("Subscription-State").split(";")]
    return value, dict(param.partition("=")[::2] for param in params)


def cseq(message: Reply) -> int:
    return int(message.header("CSeq").split()[0])


def tag(header_value: str) -> str | None:
    found = re.search(r";\s*tag=([^;\s]+)", header_value)
    return found.group(1) if found else None


def branch(message: Reply) -> str:
    return re.search(r"branch=([^;\s]+)", message.header("Via")).group(1)


def snapshot(server) -> dict[str, list[tuple]]:
    """Every row of the presence tables, to show a rejected request changed nothing."""
    return {table: server.rows(f"SELECT * FROM {table} ORDER BY id") for table in PRESENCE_TABLES}


def subscriptions(server, watcher: str | None = None, presentity: str | None = None) -> list[dict]:
    sql, params = "SELECT * FROM sipws_activewatcher WHERE 1", []
    if watcher:
        sql, params = sql + " AND watcher_uri = ?", [*params, watcher]
    if presentity:
        sql, params = sql + " AND presentity_uri = ?", [*params, presentity]
    return server.records(sql + " ORDER BY id", tuple(params))


def publications(server, presentity: str = "sip:alice@localhost") -> list[dict]:
    return server.records("SELECT * FROM sipws_presentity WHERE uri = ? ORDER BY id", (presentity,))


class NotifyCollector:
    """Reads a watcher's socket on a thread and keeps what arrived, in order, with the
    time of arrival. By default it answers every NOTIFY 200 at once (as a phone does, so
    that UDP retransmissions never start); `answer=False` plays a watcher that is gone."""

    def __init__(self, client: SipClient, *, answer: bool = True) -> None:
        self.client, self.answer = client, answer
        self.arrivals: list[tuple[float, Reply]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def messages(self) -> list[Reply]:
        return [message for _, message in self.arrivals]

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.client.try_recv(0.1)
            if message is None:
                continue
            if self.answer and message.method == "NOTIFY":
                self.client.answer(message)
            self.arrivals.append((time.monotonic(), message))

    def wait(self, count: int = 0, timeout: float = 10, until=None) -> list[Reply]:
        """The messages once `count` arrived or `until(messages)` holds (or on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages
            if len(messages) >= count and (until is None or until(messages)):
                break
            time.sleep(0.02)
        return self.messages

    def stop(self) -> list[Reply]:
        self._stop.set()
        self._thread.join(2)
        return self.messages


def drain(client: SipClient, wait: float = 0.05) -> list[Reply]:
    """Read whatever is pending, answering NOTIFYs 200."""
    got = []
    while (message := client.try_recv(wait)) is not None:
        if message.method == "NOTIFY":
            client.answer(message)
        got.append(message)
    return got


def clean_up(client: SipClient, server) -> None:
    """Remove the client's publications and end its subscriptions, so that the next test
    of a module-scoped server starts from none (a WebSocket's end on close by itself)."""
    drain(client, 0.02)
    for row in server.records(
        "SELECT uri, event, etag FROM sipws_presentity WHERE call_id = ?", (client.call_id,)
    ):
        publish(client, expires=0, etag=row["etag"], presentity=row["uri"], event=row["event"])
    for row in server.records(
        "SELECT * FROM sipws_activewatcher WHERE call_id = ? AND from_tag = ?",
        (client.call_id, client.tag),
    ):
        event = row["event"] + (f";id={row['event_id']}" if row["event_id"] else "")
        reply = subscribe(
            client, row["presentity_uri"], expires=0, to_tag=row["to_tag"], event=event
        )
        # Answer up to the final NOTIFY, so that no retransmission outlives the test.
        while reply.status == 200 and (message := client.try_recv(1)) is not None:
            if message.method == "NOTIFY":
                client.answer(message)
                if state(message)[0] == "terminated":
                    break
