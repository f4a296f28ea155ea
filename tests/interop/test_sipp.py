"""sipp (SIPp 3.6, Debian `sip-tester`) against the real server on loopback: registration
with digest, the PUBLISH lifecycle and a SUBSCRIBE dialog, over UDP and TCP. Each run must
exit 0 with every call successful and none failed, by sipp's own statistics file.

The scenarios in tests/interop/sipp/ take their identities from injection files (-inf)
written here, so the benchmark can replay them with many users; see the README there.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parent / "sipp"
SIPP = shutil.which("sipp") or "sipp"  # Debian sip-tester, via tools/install-system-deps.sh
PASSWORD = "secret"  # of every user in tests/conftest.py
CALLS, RATE = 10, 10  # ten calls at ten per second: about a second per run
TRANSPORTS = {"udp": "u1", "tcp": "t1"}  # sipp -t: one socket for all calls


@dataclass
class SippRun:
    command: list[str]
    returncode: int
    stats: dict[str, str]  # the last line of sipp's -trace_stat file
    output: str
    errors: str
    messages: str

    def explain(self) -> str:
        return (
            f"$ {' '.join(self.command)}\nexit {self.returncode}\n{self.output[-3000:]}\n"
            f"--- errors ---\n{self.errors[-3000:]}\n--- messages ---\n{self.messages[-6000:]}"
        )


def credentials(user: str) -> str:
    """sipp 3.6 cannot nest [fieldN] inside [authentication ...]; the file holds it whole."""
    return f"[authentication username={user} password={PASSWORD}]"


def write_injection(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("SEQUENTIAL\n" + "".join(";".join(row) + "\n" for row in rows))
    return path


def run_sipp(server, workdir: Path, scenario: str, *args: str, transport="udp") -> SippRun:
    """Run one scenario to completion: CALLS calls at RATE per second, bounded in time."""
    port = server.udp_port if transport == "udp" else server.tcp_port
    stat, errors, messages = workdir / "stat.csv", workdir / "errors.log", workdir / "msg.log"
    command = [
        SIPP,
        "-sf", str(SCENARIOS / scenario),
        *args,
        "-t", TRANSPORTS[transport],
        "-i", "127.0.0.1",
        "-m", str(CALLS),
        "-r", str(RATE),
        "-recv_timeout", "5000",
        "-timeout", "20s",
        "-timeout_error",
        "-nostdin",
        "-trace_stat", "-stf", str(stat),
        "-trace_err", "-error_file", str(errors),
        "-trace_msg", "-message_file", str(messages),
        f"127.0.0.1:{port}",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, errors="replace", timeout=30
    )

    def read(path: Path) -> str:
        return path.read_text(errors="replace") if path.exists() else ""

    rows = list(csv.DictReader(read(stat).splitlines(), delimiter=";"))
    return SippRun(
        command,
        done.returncode,
        rows[-1] if rows else {},
        done.stdout + done.stderr,
        read(errors),
        read(messages),
    )


def assert_all_calls_succeeded(run: SippRun) -> None:
    assert run.returncode == 0, run.explain()
    assert run.stats.get("FailedCall(C)") == "0", run.explain()
    assert run.stats.get("SuccessfulCall(C)") == str(CALLS), run.explain()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_register_with_digest(server, tmp_path, transport):
    # register_digest.xml takes its single identity from the command line.
    run = run_sipp(
        server,
        tmp_path,
        "register_digest.xml",
        "-s", "alice",
        "-key", "domain", "localhost",
        "-au", "alice",
        "-ap", PASSWORD,
        "-auth_uri", "localhost",
        transport=transport,
    )  # fmt: skip
    assert_all_calls_succeeded(run)
    assert "REGISTER sip:localhost SIP/2.0" in run.messages
    # Every call ends by unregistering its contact.
    rows = server.rows(
        "SELECT contact FROM sipws_registration WHERE aor = ? AND transport = ?",
        ("sip:alice@localhost", transport),
    )
    assert rows == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_publish_lifecycle(server, tmp_path, transport):
    users = [("alice", "localhost"), ("bob", "localhost"), ("dave", "example.com")]
    inf = write_injection(
        tmp_path / "publishers.csv",
        [[user, domain, credentials(user)] for user, domain in users],
    )
    run = run_sipp(server, tmp_path, "publish_lifecycle.xml", "-inf", str(inf), transport=transport)
    assert_all_calls_succeeded(run)
    # Each call's last PUBLISH removed its publication (RFC 3903 §4.6).
    assert run.messages.count("SIP-If-Match:") >= 3 * CALLS
    assert server.rows("SELECT uri FROM sipws_presentity") == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_subscribe_dialog(server, tmp_path, transport):
    pairs = [
        (("bob", "localhost"), "alice@localhost"),
        (("carol", "localhost"), "alice@localhost"),
        (("dave", "example.com"), "alice@localhost"),
        (("alice", "localhost"), "bob@localhost"),
    ]
    inf = write_injection(
        tmp_path / "watchers.csv",
        [[user, domain, credentials(user), target] for (user, domain), target in pairs],
    )
    run = run_sipp(server, tmp_path, "subscribe_dialog.xml", "-inf", str(inf), transport=transport)
    assert_all_calls_succeeded(run)
    assert run.messages.count("Subscription-State: terminated") >= CALLS
    # Every dialog was ended by its unsubscribe.
    assert server.rows("SELECT watcher_uri FROM sipws_activewatcher") == []
