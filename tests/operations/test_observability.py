"""What operators watch: /healthz, /metrics after real SIP traffic, and log lines that
carry the Call-ID and method of the SIP request they were logged for."""

import json
import re
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.operations.helpers import Api
from tests.presence import next_notify, pidf, publish, watch
from tests.serverproc import provision
from tests.sipclient import SipClient

ALICE = "sip:alice@localhost"


def scrape(server) -> tuple[int, dict[tuple, float]]:
    """(status, {(name, (label, value), ...): value}) of /metrics."""
    status, content, _ = Api(server).call("GET", "/metrics")
    if status != 200:
        return status, {}
    samples = {}
    for family in text_string_to_metric_families(content["text"]):
        for sample in family.samples:
            samples[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return status, samples


def test_healthz_answers_200_when_database_and_channel_layer_answer(server):
    status, content, headers = Api(server).call("GET", "/healthz")

    assert status == 200
    assert content == {"database": "ok", "channel_layer": "ok"}
    assert headers["Content-Type"] == "application/json"


def test_metrics_count_sip_traffic_and_read_state_from_the_database(server, ua):
    _, before = scrape(server)
    alice, bob = ua("udp", server, user="alice"), ua("ws", server, user="bob")
    assert alice.send_authenticated("REGISTER", expires=600).status == 200
    watch(bob, ALICE)
    publish(alice, pidf(ALICE))
    next_notify(bob)
    assert alice.send("FROBNICATE").status == 501  # an unknown method counts as "other"

    status, after = scrape(server)

    def grew(*key) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert status == 200
    assert grew("sip_requests_total", ("direction", "received"), ("method", "REGISTER")) == 2
    register_401 = ("code", "401"), ("direction", "sent"), ("method", "REGISTER")
    assert grew("sip_responses_total", *register_401) == 1
    register_200 = ("code", "200"), ("direction", "sent"), ("method", "REGISTER")
    assert grew("sip_responses_total", *register_200) == 1
    assert grew("sip_requests_total", ("direction", "received"), ("method", "other")) == 1
    other_501 = ("code", "501"), ("direction", "sent"), ("method", "other")
    assert grew("sip_responses_total", *other_501) == 1
    assert grew("sip_requests_total", ("direction", "sent"), ("method", "NOTIFY")) == 2
    notify_200 = ("code", "200"), ("direction", "received"), ("method", "NOTIFY")
    assert grew("sip_responses_total", *notify_200) == 2
    assert grew("sip_notify_delay_seconds_count", ("trigger", "SUBSCRIBE")) == 1
    assert grew("sip_notify_delay_seconds_count", ("trigger", "PUBLISH")) == 1
    assert grew("sip_request_round_trip_seconds_count", ("method", "NOTIFY")) == 2
    # Gauges: what the database holds right now, and this process's WebSocket connections.
    registrations = server.rows("SELECT count(*) FROM sipws_registration")[0][0]
    subscriptions = server.rows(
        "SELECT count(*) FROM sipws_activewatcher WHERE event = 'presence' AND status = 'active'"
    )[0][0]
    assert after[("sip_registrations", ("transport", "udp"))] == registrations >= 1
    assert after[("sip_subscriptions", ("event", "presence"), ("status", "active"))] == (
        subscriptions
    )
    # (WebSocket clients of earlier tests may still be closing.)
    assert server.wait_for(lambda: scrape(server)[1][("sip_websocket_connections",)] == 1)
    for reason in ("full", "too_large", "error"):
        assert after[("sip_channel_layer_send_failures_total", ("reason", reason))] == 0


def test_log_lines_carry_the_call_id_and_method(server):
    client = SipClient("udp", server, user="erin-unknown")
    try:
        reply = client.send_authenticated("REGISTER", expires=600, password="wrong")
        assert reply.status == 403
    finally:
        client.close()

    def logged():
        return [line for line in server.output if "authentication failed for erin-unknown" in line]

    lines = server.wait_for(logged)
    assert lines, "".join(server.output[-20:])
    assert lines[0].rstrip().endswith(f"call_id={client.call_id} method=REGISTER")


@pytest.fixture(scope="module")
def unhealthy(tmp_path_factory):
    """A server whose Redis is gone (a closed port), logging JSON, and /metrics restricted to
    a network the tests are not on, or a token."""
    proc = provision(
        tmp_path_factory.mktemp("unhealthy"),
        [("bob@localhost", "secret")],
        REDIS_URL="redis://127.0.0.1:1/0",
        LOG_FORMAT="json",
        METRICS_ALLOWED_IPS="192.0.2.0/24",
        METRICS_TOKEN="scrape-secret",
    )
    proc.start()  # the server starts without Redis: only what needs it fails
    yield proc
    proc.stop()


def test_healthz_answers_503_naming_what_failed(unhealthy):
    started = time.monotonic()
    status, content, _ = Api(unhealthy).call("GET", "/healthz")

    assert status == 503
    assert content == {"database": "ok", "channel_layer": "failed"}
    assert time.monotonic() - started < 5


def test_json_logs_carry_the_call_id_and_method(unhealthy):
    client = SipClient("udp", unhealthy, user="bob")
    try:
        # The nonce-count check needs Redis: the request fails and the error is logged.
        assert client.send_authenticated("REGISTER", expires=600).status == 500
    finally:
        client.close()

    def logged():
        for line in unhealthy.output:
            if line.startswith("{") and client.call_id in line:
                return json.loads(line)
        return None

    record = unhealthy.wait_for(logged)
    assert record is not None, "".join(unhealthy.output[-10:])
    assert (record["call_id"], record["method"]) == (client.call_id, "REGISTER")
    assert record["level"] == "ERROR" and record["logger"] == "sipws.server"
    assert record["message"].startswith("error handling REGISTER")
    assert "ConnectionError" in record["exc_info"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])


def test_metrics_answer_only_allowed_addresses_or_the_token(unhealthy):
    assert Api(unhealthy).call("GET", "/metrics")[0] == 403
    wrong = Api(unhealthy).call("GET", "/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong[0] == 403
    status, content, _ = Api(unhealthy).call(
        "GET", "/metrics", headers={"Authorization": "Bearer scrape-secret"}
    )
    assert status == 200
    assert "sip_requests_total" in content["text"]
