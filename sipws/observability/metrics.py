"""Counters and histograms the SIP pipeline feeds (exposed at /metrics).

The dispatcher calls the small functions below several times per message; each adds to
a plain dictionary, and `PipelineCollector` turns the dictionaries into Prometheus'
families at scrape time. prometheus_client's own Counter and Histogram take a lock and a
label lookup on every call, a microsecond each, which was more than the bookkeeping
needs on the one event loop that feeds them. Gauges of stored state (registrations,
subscriptions) are read from the database at scrape time instead
(`views.StateCollector`), so they are right whichever process changed the state.
Method labels are the RFC 3261 methods plus "other", so hostile input cannot grow the
number of series.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from itertools import accumulate

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from . import logcontext

METHODS = frozenset(
    "INVITE ACK BYE CANCEL OPTIONS REGISTER PRACK SUBSCRIBE NOTIFY PUBLISH INFO REFER "
    "MESSAGE UPDATE".split()
)
TIME_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

_requests: Counter[tuple[str, str]] = Counter()  # (direction, method) → count
_responses: Counter[tuple[str, str, str]] = Counter()  # (direction, method, code) → count


class _Histogram:
    """Observations per label value: a count per bucket (the last one +Inf) and a sum."""

    def __init__(self, name: str, documentation: str, label: str, bounds: tuple) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.bounds = bounds
        self.series: dict[str, list] = {}

    def observe(self, value: str, amount: float) -> None:
        series = self.series.get(value)
        if series is None:
            series = self.series[value] = [0] * (len(self.bounds) + 1) + [0.0]
        series[bisect_left(self.bounds, amount)] += 1  # the first bucket with amount <= le
        series[-1] += amount

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=[self.label])
        les = [floatToGoString(bound) for bound in self.bounds] + ["+Inf"]
        for value, series in list(self.series.items()):
            cumulative = list(accumulate(series[:-1]))
            family.add_metric([value], list(zip(les, cumulative, strict=True)), series[-1])
        return family


notify_delay = _Histogram(
    "sip_notify_delay_seconds",
    "From the arrival of the request that caused a NOTIFY (the PUBLISH of a new state, the "
    "SUBSCRIBE) to the NOTIFY handed to the transport; label trigger is that request's method.",
    "trigger",
    TIME_BUCKETS,
)
round_trips = _Histogram(
    "sip_request_round_trip_seconds",
    "From a request this server sent (NOTIFY, a relayed MESSAGE) to its final response "
    "(timeouts not included).",
    "method",
    (*TIME_BUCKETS, 10, 32),
)


class PipelineCollector:
    """The dictionaries above as Prometheus families, read when /metrics is scraped."""

    def collect(self):
        requests = CounterMetricFamily(
            "sip_requests",
            "SIP requests received (direction=received) and sent by this server "
            "(direction=sent: NOTIFY), retransmissions not counted.",
            labels=["direction", "method"],
        )
        for labels, count in list(_requests.items()):
            requests.add_metric(list(labels), count)
        yield requests
        responses = CounterMetricFamily(
            "sip_responses",
            "SIP final and provisional responses sent by this server (direction=sent) and "
            "received to its own requests (direction=received).",
            labels=["direction", "method", "code"],
        )
        for labels, count in list(_responses.items()):
            responses.add_metric(list(labels), count)
        yield responses
        yield notify_delay.family()
        yield round_trips.family()


REGISTRY.register(PipelineCollector())


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


def request_received(method: str) -> None:
    _requests["received", method_label(method)] += 1


def request_sent(data: bytes, now: float) -> None:
    """A request of ours went out; a NOTIFY that a request caused also times that request."""
    method = method_label(data[: data.find(b" ")].decode("ascii", "replace"))
    _requests["sent", method] += 1
    context = logcontext.current.get()
    if method == "NOTIFY" and context is not None:  # not a timer's or an HTTP call's NOTIFY
        notify_delay.observe(method_label(context.method), now - context.received)


def round_trip(method: str, seconds: float) -> None:
    round_trips.observe(method_label(method), seconds)


def response_sent(method: str, code: int) -> None:
    _responses["sent", method_label(method), str(code)] += 1


def response_received(method: str, code: int) -> None:
    _responses["received", method_label(method), str(code)] += 1
