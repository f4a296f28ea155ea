"""Tests for sipws.core.transaction: non-INVITE state machines driven by an injected clock."""

import pytest

from sipws.core.transaction import (
    ClientTransactions,
    Disposition,
    FinalResponse,
    Retransmit,
    ServerAction,
    ServerTransactions,
    State,
    Timeout,
)

KEY = ("z9hG4bK-1", "192.0.2.1:5060", "SUBSCRIBE")
OTHER = ("z9hG4bK-2", "192.0.2.1:5060", "SUBSCRIBE")
TRYING_100 = b"SIP/2.0 100 Trying\r\n\r\n"
OK_200 = b"SIP/2.0 200 OK\r\n\r\n"
NOTIFY = b"NOTIFY sip:alice@192.0.2.1 SIP/2.0\r\n\r\n"


def run_timers(transactions, until: float) -> list[tuple[float, object]]:
    """Fire every timer up to `until` at its exact deadline, as an event loop would."""
    fired = []
    while (deadline := transactions.get_timer()) is not None and deadline <= until:
        for event in transactions.handle_timer(deadline) or []:
            fired.append((deadline, event))
    return fired


# Server ---------------------------------------------------------------------------------


def test_new_request_then_retransmission_absorbed_while_trying():
    server = ServerTransactions()
    assert server.receive_request(KEY, 0.0, reliable=False).disposition is Disposition.NEW
    assert server.receive_request(KEY, 0.5, reliable=False).disposition is Disposition.ABSORB
    assert server.receive_request(OTHER, 0.5, reliable=False).disposition is Disposition.NEW
    assert server.state(KEY) is State.TRYING


def test_provisional_response_is_replayed_in_proceeding():
    server = ServerTransactions()
    server.receive_request(KEY, 0.0, reliable=False)
    server.send_response(KEY, 100, TRYING_100, 0.1)
    assert server.state(KEY) is State.PROCEEDING
    action = server.receive_request(KEY, 0.5, reliable=False)
    assert action == ServerAction(Disposition.REPLAY, TRYING_100)


def test_last_response_replayed_in_completed():
    server = ServerTransactions()
    server.receive_request(KEY, 0.0, reliable=False)
    server.send_response(KEY, 100, TRYING_100, 0.1)
    server.send_response(KEY, 200, OK_200, 0.2)
    assert server.state(KEY) is State.COMPLETED
    assert server.receive_request(KEY, 1.0, reliable=False) == ServerAction(
        Disposition.REPLAY, OK_200
    )


def test_responses_after_the_final_one_are_ignored():
    server = ServerTransactions()
    server.receive_request(KEY, 0.0, reliable=False)
    server.send_response(KEY, 200, OK_200, 0.2)
    server.send_response(KEY, 180, b"late 180", 0.3)
    server.send_response(KEY, 500, b"late 500", 0.3)
    server.send_response(OTHER, 200, OK_200, 0.3)  # never received: nothing to record
    assert server.receive_request(KEY, 1.0, reliable=False).data == OK_200
    assert OTHER not in server


def test_status_must_be_a_sip_status():
    server = ServerTransactions()
    server.receive_request(KEY, 0.0, reliable=False)
    with pytest.raises(ValueError):
        server.send_response(KEY, 99, b"", 0.1)


def test_timer_j_removes_the_entry_then_the_key_is_new_again():
    server = ServerTransactions()
    server.receive_request(KEY, 0.0, reliable=False)
    server.send_response(KEY, 200, OK_200, 1.0)
    assert server.get_timer() == 1.0 + 32.0
    server.handle_timer(32.9)
    assert KEY in server
    server.handle_timer(33.0)
    assert KEY not in server
    assert server.get_timer() is None
    assert server.receive_request(KEY, 33.1, reliable=False).disposition is Disposition.NEW


def test_reliable_transport_has_no_timer_j_wait():
    server = ServerTransactions()
    server.receive_request(KEY, 0.0, reliable=True)
    server.send_response(KEY, 200, OK_200, 0.1)
    assert KEY not in server
    assert server.get_timer() is None
    assert server.receive_request(KEY, 0.2, reliable=True).disposition is Disposition.NEW


def test_timer_j_follows_t1():
    server = ServerTransactions(t1=0.1)
    server.receive_request(KEY, 0.0, reliable=False)
    server.send_response(KEY, 200, OK_200, 0.0)
    assert server.get_timer() == pytest.approx(6.4)


def test_unanswered_request_is_forgotten_after_64_t1():
    server = ServerTransactions()
    server.receive_request(KEY, 0.0, reliable=False)
    server.send_response(KEY, 100, TRYING_100, 10.0)  # provisional: no new deadline
    server.handle_timer(32.0)
    assert len(server) == 0


def test_get_timer_is_the_earliest_deadline():
    server = ServerTransactions()
    server.receive_request(KEY, 0.0, reliable=False)
    server.receive_request(OTHER, 1.0, reliable=False)
    server.send_response(KEY, 200, OK_200, 2.0)  # moves KEY's deadline from 32 to 34
    assert server.get_timer() == 33.0
    server.handle_timer(33.0)
    assert KEY in server and OTHER not in server
    assert server.get_timer() == 34.0


def test_overload_when_full():
    server = ServerTransactions(max_entries=2)
    server.receive_request(("a",), 0.0, reliable=False)
    server.receive_request(("b",), 0.0, reliable=False)
    assert server.receive_request(("c",), 1.0, reliable=False).disposition is (
        Disposition.OVERLOADED
    )
    # a known key is still matched while full
    assert server.receive_request(("a",), 1.0, reliable=False).disposition is (Disposition.ABSORB)
    # room is made by expiring due entries first
    server.send_response(("a",), 200, OK_200, 1.0)
    assert server.receive_request(("c",), 33.0, reliable=False).disposition is Disposition.NEW


def test_many_transactions_expire_in_order():
    server = ServerTransactions()
    for i in range(1000):
        server.receive_request(i, float(i), reliable=False)
        server.send_response(i, 200, OK_200, float(i))
    server.handle_timer(32.0 + 499)
    assert len(server) == 500
    assert server.get_timer() == 32.0 + 500


# Client ---------------------------------------------------------------------------------


def test_unreliable_retransmit_schedule_then_timeout_once():
    client = ClientTransactions()
    client.start(KEY, NOTIFY, 0.0, reliable=False)
    fired = run_timers(client, until=100.0)
    retransmits = [when for when, event in fired if isinstance(event, Retransmit)]
    gaps = [b - a for a, b in zip([0.0, *retransmits], retransmits, strict=False)]
    assert gaps == [0.5, 1, 2, 4, 4, 4, 4, 4, 4, 4]
    assert all(event == Retransmit(KEY, NOTIFY) for _, event in fired[:-1])
    assert fired[-1] == (32.0, Timeout(KEY))
    assert KEY not in client
    assert client.get_timer() is None


def test_reliable_transport_never_retransmits():
    client = ClientTransactions()
    client.start(KEY, NOTIFY, 0.0, reliable=True)
    assert run_timers(client, until=100.0) == [(32.0, Timeout(KEY))]


def test_provisional_response_switches_retransmits_to_t2():
    client = ClientTransactions()
    client.start(KEY, NOTIFY, 0.0, reliable=False)
    assert run_timers(client, until=0.5) == [(0.5, Retransmit(KEY, NOTIFY))]
    assert client.receive_response(KEY, 100, 0.7) is None
    assert client.state(KEY) is State.PROCEEDING
    fired = run_timers(client, until=14.0)
    # the Timer E armed before the 100 still fires at 1.5, then every T2
    assert [when for when, _ in fired] == [1.5, 5.5, 9.5, 13.5]


def test_final_response_yields_exactly_one_event():
    client = ClientTransactions()
    client.start(KEY, NOTIFY, 0.0, reliable=False)
    assert client.receive_response(KEY, 200, 0.1) == FinalResponse(KEY, 200)
    assert client.state(KEY) is State.COMPLETED
    assert client.receive_response(KEY, 200, 0.2) is None
    assert client.receive_response(KEY, 180, 0.2) is None
    # Timer K (T4) absorbs late duplicates, then the transaction ends without events
    assert run_timers(client, until=100.0) == []
    assert client.receive_response(KEY, 200, 6.0) is None
    assert KEY not in client


def test_final_response_after_provisional_and_timer_k():
    client = ClientTransactions()
    client.start(KEY, NOTIFY, 0.0, reliable=False)
    client.receive_response(KEY, 180, 0.1)
    assert client.receive_response(KEY, 481, 0.2) == FinalResponse(KEY, 481)
    assert client.get_timer() == pytest.approx(5.2)
    client.handle_timer(5.2)
    assert KEY not in client


def test_reliable_final_response_ends_at_once():
    client = ClientTransactions()
    client.start(KEY, NOTIFY, 0.0, reliable=True)
    assert client.receive_response(KEY, 202, 0.1) == FinalResponse(KEY, 202)
    assert KEY not in client
    assert client.get_timer() is None


def test_response_for_unknown_key_is_ignored():
    assert ClientTransactions().receive_response(KEY, 200, 0.0) is None


def test_cancel_drops_the_transaction_and_its_timers():
    client = ClientTransactions()
    client.start(KEY, NOTIFY, 0.0, reliable=False)
    client.start(OTHER, NOTIFY, 0.0, reliable=True)
    client.cancel(KEY)
    client.cancel(KEY)
    assert run_timers(client, until=100.0) == [(32.0, Timeout(OTHER))]


def test_key_can_be_reused_after_cancel_without_old_timers():
    client = ClientTransactions()
    client.start(KEY, NOTIFY, 0.0, reliable=False)
    client.cancel(KEY)
    client.start(KEY, b"second", 10.0, reliable=False)
    assert run_timers(client, until=10.5) == [(10.5, Retransmit(KEY, b"second"))]


def test_duplicate_start_is_an_error():
    client = ClientTransactions()
    client.start(KEY, NOTIFY, 0.0, reliable=False)
    with pytest.raises(ValueError):
        client.start(KEY, NOTIFY, 0.1, reliable=False)


def test_late_handle_timer_sends_one_retransmit_per_call():
    client = ClientTransactions()
    client.start(KEY, NOTIFY, 0.0, reliable=False)
    assert client.handle_timer(3.0) == [Retransmit(KEY, NOTIFY)]
    assert client.get_timer() == 4.0  # reset from when it fired: 3.0 + 1.0


def test_timers_follow_configured_t1_t2_t4():
    client = ClientTransactions(t1=0.1, t2=0.3, t4=1.0)
    client.start(KEY, NOTIFY, 0.0, reliable=False)
    fired = run_timers(client, until=1.0)
    assert [round(when, 3) for when, _ in fired] == [0.1, 0.3, 0.6, 0.9]
    client.receive_response(KEY, 200, 1.0)
    assert client.get_timer() == pytest.approx(2.0)
    client.start(OTHER, NOTIFY, 0.0, reliable=True)
    assert run_timers(client, until=10.0)[-1] == (pytest.approx(6.4), Timeout(OTHER))
