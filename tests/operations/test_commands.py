"""`manage.py presence ...` against a running server: the queries print the stored state,
the actions reach the server over its control socket and the watchers see their effect;
failures exit non-zero with a one-line error."""

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from tests.operations.helpers import drop_rules, subscription_of, write_rules
from tests.presence import assert_silent, cseq, next_notify, pidf, publish, state, tuples, watch
from tests.presrules import rule
from tests.serverproc import ROOT

ALICE, BOB, CAROL = "sip:alice@localhost", "sip:bob@localhost", "sip:carol@localhost"


def presence(server, *args, **env):
    """Run `manage.py presence ...`: (exit code, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "manage.py", "presence", *args],
        cwd=ROOT,
        env={**server.env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout, done.stderr


def test_queries_print_one_line_per_row(server, ua):
    alice, bob = ua("udp", server, user="alice"), ua("ws", server, user="bob")
    publish(alice, pidf(ALICE, note="reading"))
    watch(bob, ALICE)
    row = subscription_of(server, bob)

    code, out, err = presence(server, "list")
    assert (code, err) == (0, "")
    assert out.startswith(f"{ALICE}  presence  1 publication(s)  expires ")

    code, out, _ = presence(server, "show", "alice@localhost")
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == [f"{ALICE}  presence", "subscriptions: 1"]
    assert lines[2].startswith("publication ") and f"from {ALICE}" in lines[2]
    assert lines[3] == "state (application/pidf+xml):"
    assert "<note>reading</note>" in out

    code, out, _ = presence(server, "subscriptions", "--presentity", ALICE, "--status", "active")
    assert code == 0
    assert out.splitlines() == [
        f"{row['id']}  {BOB} -> {ALICE}  presence  active  ws  expires {_iso(row['expires'])}"
    ]
    assert presence(server, "subscriptions", "--watcher", CAROL)[1] == ""

    code, out, _ = presence(server, "watchers", "--presentity", "*@localhost")
    assert code == 0
    assert f"{BOB} -> {ALICE}  presence  active (subscribe)" in out.splitlines()


def _iso(sqlite_time: str) -> str:
    return sqlite_time.replace(" ", "T") + ("Z" if "+" not in sqlite_time else "")


def test_json_output_is_what_the_api_answers(server, ua, api):
    bob = ua("udp", server, user="bob")
    watch(bob, ALICE)

    code, out, _ = presence(server, "--json", "subscriptions", "--watcher", BOB)

    assert code == 0
    assert json.loads(out) == api.get("/api/admin/subscriptions/", watcher=BOB)[1]["results"]


def test_terminate_reaches_the_watcher_through_the_running_server(server, ua):
    bob = ua("udp", server, user="bob")
    _, first = watch(bob, ALICE)
    row = subscription_of(server, bob)

    code, out, err = presence(server, "terminate", str(row["id"]))

    assert (code, err) == (0, "")
    assert out == f"terminated subscription {row['id']}, 1 NOTIFY(s) sent\n"
    told = next_notify(bob)
    assert told.header("Subscription-State") == "terminated;reason=deactivated"
    assert cseq(told) == cseq(first) + 1


def test_refresh_and_reevaluate(server, ua):
    carol, bob = ua("udp", server, user="carol"), ua("ws", server, user="bob")
    publish(carol, pidf(CAROL, note="away"))
    _, first = watch(bob, CAROL)

    code, out, _ = presence(server, "refresh", "carol@localhost")

    assert (code, out) == (0, f"refresh {CAROL} presence: 1 NOTIFY(s) sent\n")
    again = next_notify(bob)
    assert tuples(again.body) == tuples(first.body) == [("t1", "open", "away")]
    try:
        write_rules(server, CAROL, rule("wait", "confirm", one=(BOB,)))

        code, out, _ = presence(server, "reevaluate", CAROL, "--event", "presence")

        assert code == 0
        assert out.splitlines() == [
            f"reevaluate {CAROL} presence: 1 NOTIFY(s) sent",
            f"  {BOB}: active -> pending",
        ]
        assert state(next_notify(bob))[0] == "pending"
    finally:
        drop_rules(server, CAROL)


def test_cleanup(server, ua):
    bob = ua("udp", server, user="bob")
    watch(bob, ALICE, expires=1)
    time.sleep(1.2)

    code, out, _ = presence(server, "cleanup")

    assert code == 0
    assert out == (
        "removed 0 publication(s), 1 subscription(s), 0 registration(s); 1 NOTIFY(s) sent\n"
    )
    assert next_notify(bob).header("Subscription-State") == "terminated;reason=timeout"


def test_failures_exit_non_zero_with_one_line(server, ua):
    bob = ua("udp", server, user="bob")
    watch(bob, ALICE)
    failures = {
        ("terminate", "999999"): "CommandError: no subscription 999999\n",
        ("refresh", ALICE, "--event", "bogus"): "CommandError: unknown event package 'bogus'",
        ("reevaluate", "alice"): "CommandError: not a SIP address: 'alice'\n",
        ("show", "sip:nobody@localhost"): "CommandError: no presentity sip:nobody@localhost\n",
    }
    with ThreadPoolExecutor(len(failures)) as pool:  # each is a Django start-up
        answers = {args: pool.submit(presence, server, *args) for args in failures}
    for args, error in failures.items():
        code, out, err = answers[args].result()
        assert code == 1, (args, out, err)
        assert err.startswith(error), (args, err)
        assert err.count("\n") == 1 and out == ""
    code, _, err = presence(server, "subscriptions", "--status", "sleeping")
    assert code == 2 and "invalid choice: 'sleeping'" in err
    assert_silent(bob)


def test_without_a_server_to_ask_the_state_changes_and_a_warning_says_so(server, ua):
    bob = ua("udp", server, user="bob")
    watch(bob, ALICE)
    row = subscription_of(server, bob)

    # No control socket configured: as if no server ran on this machine.
    code, out, err = presence(server, "terminate", str(row["id"]), SIP_CONTROL_SOCKET="")

    assert code == 0
    assert err == "warning: no server answered on (none): 1 NOTIFY(s) not sent\n"
    assert out == f"terminated subscription {row['id']}, 0 NOTIFY(s) sent\n"
    assert server.rows("SELECT id FROM sipws_activewatcher WHERE id = ?", (row["id"],)) == []
    assert_silent(bob)
