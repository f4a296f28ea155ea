"""Prometheus counters and histograms the SIP pipeline feeds (exposed at /metrics).

The dispatcher calls the small functions below; each is a dictionary lookup or two and an
addition, nothing that shows next to a request's parse and database call. Gauges of
stored state (registrations, subscriptions) are read from the database at scrape time
instead (`views.StateCollector`), so they are right whichever process changed the state.
Method labels are the RFC 3261 methods plus "other", so hostile input cannot grow the
number of series.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from . import logcontext

METHODS = frozenset(
    "INVITE ACK BYE CANCEL OPTIONS REGISTER PRACK SUBSCRIBE NOTIFY PUBLISH INFO REFER "
    "MESSAGE UPDATE".split()
)

requests = Counter(
    "sip_requests",
    "SIP requests received (direction=received) and sent by this server (direction=sent: "
    "NOTIFY), retransmissions not counted.",
    ["direction", "method"],
)
responses = Counter(
    "sip_responses",
    "SIP final and provisional responses sent by this server (direction=sent) and received "
    "to its own requests (direction=received).",
    ["direction", "method", "code"],
)
notify_delay = Histogram(
    "sip_notify_delay_seconds",
    "From the arrival of the request that caused a NOTIFY (the PUBLISH of a new state, the "
    "SUBSCRIBE) to the NOTIFY handed to the transport; label trigger is that request's method.",
    ["trigger"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
round_trips = Histogram(
    "sip_request_round_trip_seconds",
    "From a request this server sent (NOTIFY, a relayed MESSAGE) to its final response "
    "(timeouts not included).",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 32),
)


_children: dict[tuple, object] = {}


def _child(metric, *labels: str):
    """`metric.labels(*labels)`, memoized: prometheus_client validates and locks on every
    `labels()` call, which was a tenth of a NOTIFY fan-out's CPU. Labels are bounded
    (methods, status codes), so is this dictionary."""
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def request_received(method: str) -> None:
    _child(requests, "received", method_label(method)).inc()


def request_sent(data: bytes, now: float) -> None:
    """A request of ours went out; a NOTIFY that a request caused also times that request."""
    method = method_label(data[: data.find(b" ")].decode("ascii", "replace"))
    _child(requests, "sent", method).inc()
    context = logcontext.current.get()
    if method == "NOTIFY" and context is not None:  # not a timer's or an HTTP call's NOTIFY
        _child(notify_delay, method_label(context.method)).observe(now - context.received)


def round_trip(method: str, seconds: float) -> None:
    _child(round_trips, method_label(method)).observe(seconds)


def response_sent(method: str, code: int) -> None:
    _child(responses, "sent", method_label(method), str(code)).inc()


def response_received(method: str, code: int) -> None:
    _child(responses, "received", method_label(method), str(code)).inc()
