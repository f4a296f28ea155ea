"""`make bench`: load scenarios against the embedded default server; a table and raw output.

Every scenario gets a fresh server (`manage.py runsip`, SQLite, SIP_RATE_LIMIT=0) on a copy
of one provisioned DATA_DIR, so no scenario inherits another's rows or memory. Rate
scenarios search for the highest rate with < 0.1 % failed calls and <= 1 % retransmitted
requests: doubling steps from 100/s, then bisection. BENCH_QUICK=1 runs one short step each.
The presence scenarios (PUBLISH, SUBSCRIBE, message-summary, fan-out) run three sides in
turn: ours with SIP_TRUSTED_PEERS=127.0.0.1/32 (no digest, like Kamailio), ours with
digest, and Kamailio 5.6 (bench/kamailio/, a fresh one per scenario); ours' rows say what
share of Kamailio's rate they reach. Without Kamailio the run stops (`--no-kamailio` runs
our sides only). XCAP runs wrk (bench/xcap.lua) at fixed connection counts.
`--only xcap,publish` runs some. Results: stdout and bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import kamailioproc  # noqa: E402
from kamailioproc import KamailioFailed, KamailioProcess, check_config, version  # noqa: E402
from sipmsg import DOMAIN, PASSWORD  # noqa: E402

from tests.serverproc import ServerProcess  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
STEP_SECONDS = 3 if QUICK else 5
USERS = 6000  # the sipp scenarios cycle over u0..u5999 (5,500 WebSocket clients at most)
SUBSCRIBERS = 200 if QUICK else 10_000  # WebSocket clients of the memory scenario
# Provisioned accounts: the subscribers, their warm-up clients and the users they watch.
ACCOUNTS = max(USERS, SUBSCRIBERS + 100)
SIPP_DIR = ROOT / "tests" / "interop" / "sipp"  # digest flavours, also run by the tests
NO_AUTH_SIPP_DIR = BENCH / "sipp"  # the same flows without digest, for both servers
RESULTS = BENCH / "results" / "latest.md"
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Side:
    """One server set-up a compared scenario runs against."""

    label: str
    digest: bool  # whether the load authenticates (the digest sipp files, 401 round trips)
    env: tuple[tuple[str, str], ...] = ()  # our server's settings
    kamailio: bool = False


# Loopback is trusted: sipp and the drivers send from 127.0.0.1, as Kamailio asks no auth.
OURS_NO_AUTH = Side(
    "ours, no auth (SIP_TRUSTED_PEERS)", False, (("SIP_TRUSTED_PEERS", "127.0.0.1/32"),)
)
OURS_DIGEST = Side("ours, digest", True)
KAMAILIO = Side("Kamailio", False, kamailio=True)
SIDES = [OURS_NO_AUTH, OURS_DIGEST, KAMAILIO]  # main() drops KAMAILIO for --no-kamailio
COMPARED = ("publish", "subscribe", "message-summary", "fanout")  # the scenarios run on SIDES


@dataclass
class Step:
    """One load step; `rate` is the offered rate (sipp) or the measured one (closed loop)."""

    rate: float
    done: int  # calls or requests that completed
    failed: int
    retransmitted: int = 0
    requests: int = 0  # requests sent, the base of the retransmission share
    server_cpu: float = 0.0  # share of one core
    driver_cpu: float = 0.0
    detail: str = ""
    screen: str = ""  # sipp's final screen

    @property
    def failed_pct(self) -> float:
        return 100 * self.failed / max(1, self.done + self.failed)

    @property
    def retrans_pct(self) -> float:
        return 100 * self.retransmitted / max(1, self.requests)

    @property
    def passed(self) -> bool:
        return self.done > 0 and self.failed_pct < 0.1 and self.retrans_pct <= 1.0

    def line(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        return (
            f"{self.rate:8.0f}/s  done {self.done:6d}  failed {self.failed_pct:6.2f} %  "
            f"retrans {self.retrans_pct:6.2f} %  server cpu {self.server_cpu:4.0%}  "
            f"driver cpu {self.driver_cpu:4.0%}  {verdict}  {self.detail}"
        )


@dataclass
class Bench:
    """The run's working directory, its results table and its raw output."""

    work: Path
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)

    def log(self, text: str) -> None:
        print(text, flush=True)
        self.raw.append(text)

    def row(self, title: str, result: str, detail: str = "", reference: str = "") -> None:
        self.rows.append((title, result, detail, reference))

    @contextmanager
    def server(self, name: str, **env: str):
        """A fresh server on a copy of the provisioned DATA_DIR; its log is kept on errors."""
        data_dir = self.work / f"data-{name}"
        shutil.copytree(self.work / "template", data_dir)
        proc = ServerProcess(data_dir, SIP_DOMAINS=DOMAIN, SIP_RATE_LIMIT="0", **env).start()
        try:
            yield proc
        finally:
            proc.stop()
            if any("Traceback" in line for line in proc.output):
                self.raw.append("server log (it logged errors):\n" + "".join(proc.output[-60:]))

    @contextmanager
    def kamailio(self, name: str):
        """A fresh Kamailio (bench/kamailio/, no state from other scenarios); stopped after."""
        kamailio = KamailioProcess(self.work / f"kamailio-{name}").start()
        self.raw.append(kamailio.started)
        try:
            yield kamailio
        finally:
            kamailio.stop()
            if kamailio.logged_errors():
                self.raw.append("Kamailio log (it logged errors):\n" + kamailio.log_tail(60))

    def target(self, side: Side, name: str):
        """The server of one side of a compared scenario, as a context manager."""
        if side.kamailio:
            return self.kamailio(name)
        return self.server(f"{name}-{'digest' if side.digest else 'noauth'}", **dict(side.env))


# Server --------------------------------------------------------------------------------


def provision(data_dir: Path, accounts: int = ACCOUNTS, **env: str) -> None:
    """Migrate and add users u0..u(accounts-1) and `fan` (no Django login: its password
    hash is slow).

    `env` may name another database (DATABASE_URL), as bench/cluster_bench.py does."""
    proc = ServerProcess(data_dir, SIP_DOMAINS=DOMAIN, **env)
    proc.manage("migrate", "-v0")
    script = (
        "from django.db import transaction\n"
        "from sipws.services.accounts import create_account\n"
        "with transaction.atomic():\n"
        f"    for name in ['fan', *(f'u{{i}}' for i in range({accounts}))]:\n"
        f"        create_account(f'{{name}}@{DOMAIN}', {PASSWORD!r}, create_login=False)\n"
    )
    proc.manage("shell", "-c", script)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def children_of(pid: int) -> list[int]:
    """Processes whose parent is `pid`: Kamailio's workers, whose CPU counts as its own."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # gone meanwhile, or not readable
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


def tree_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:  # a process that ended: its time is gone with it
            pass
    return total


def wait_idle(pid: int, limit: float = 30) -> None:
    """Let the server finish a backlog (queued datagrams, retransmissions) before a step."""
    pids = [pid, *children_of(pid)]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = tree_cpu_seconds(pids)
        time.sleep(0.5)
        if tree_cpu_seconds(pids) - before < 0.05 * 0.5:
            return


def measured(pid: int, command: list[str], timeout: float):
    """Run a load generator; return its result and the server's (with its child processes)
    and its own CPU share."""
    pids = [pid, *children_of(pid)]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before, start = tree_cpu_seconds(pids), time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    driver = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return result, (tree_cpu_seconds(pids) - server_before) / wall, driver / wall


# sipp scenarios -------------------------------------------------------------------------


@dataclass
class SippScenario:
    file: str
    requests_per_call: int  # requests sipp sends per call, the retransmission base
    args: list[str] = field(default_factory=list)
    user_line: Callable[[int], str] | None = None  # injection file (-inf) line of user i
    folder: Path = SIPP_DIR

    @property
    def path(self) -> Path:
        return self.folder / self.file


def _auth(i: int) -> str:
    # sipp 3.6 cannot nest [field..] in [authentication], so the file carries it whole.
    return f"[authentication username=u{i} password={PASSWORD}]"


SIPP = {
    # One AOR for every call: register_digest.xml takes its identity from the command line.
    "register": SippScenario(
        "register_digest.xml",
        3,
        ["-s", "u0", "-key", "domain", DOMAIN, "-au", "u0", "-ap", PASSWORD, "-auth_uri", DOMAIN],
    ),
    # One user per call, so that concurrent calls do not share a presentity.
    "publish": SippScenario(
        "publish_lifecycle.xml", 5, user_line=lambda i: f"u{i};{DOMAIN};{_auth(i)}"
    ),
    "subscribe": SippScenario(
        "subscribe_dialog.xml",
        3,
        user_line=lambda i: f"u{i};{DOMAIN};{_auth(i)};u{(i + 1) % USERS}@{DOMAIN}",
    ),
    # Each user publishes its own mailbox and watches it (only the owner may, on our side).
    # -aa answers a NOTIFY where the scenario expects none (see message_summary.xml).
    "message-summary": SippScenario(
        "message_summary_digest.xml",
        5,
        ["-aa"],
        user_line=lambda i: f"u{i};{DOMAIN};{_auth(i)}",
        folder=NO_AUTH_SIPP_DIR,
    ),
}
# The same flows less the 401 round trips and credentials: one file for both servers.
SIPP_NO_AUTH = {
    "publish": SippScenario(
        "publish_lifecycle.xml", 4, user_line=lambda i: f"u{i};{DOMAIN}", folder=NO_AUTH_SIPP_DIR
    ),
    "subscribe": SippScenario(
        "subscribe_dialog.xml",
        2,
        user_line=lambda i: f"u{i};{DOMAIN};u{(i + 1) % USERS}@{DOMAIN}",
        folder=NO_AUTH_SIPP_DIR,
    ),
    "message-summary": SippScenario(
        "message_summary.xml",
        4,
        ["-aa"],
        user_line=lambda i: f"u{i};{DOMAIN}",
        folder=NO_AUTH_SIPP_DIR,
    ),
}


def sipp_args(scenario: SippScenario, work: Path) -> list[str]:
    if scenario.user_line is None:
        return scenario.args
    # tests/interop/sipp/ and bench/sipp/ hold files of the same name: keep their lists apart.
    path = work / f"{scenario.folder.parent.name}-{Path(scenario.file).stem}.csv"
    if not path.exists():
        lines = "\n".join(scenario.user_line(i) for i in range(USERS))
        path.write_text(f"SEQUENTIAL\n{lines}\n")
    return [*scenario.args, "-inf", str(path)]


def sipp_command(
    scenario: SippScenario, work: Path, port: int, rate: int, seconds: int, *extra: str
) -> list[str]:
    """sipp at `rate` calls/s for `seconds`, its statistics to work/sipp-stat.csv."""
    return [
        "sipp", "-sf", str(scenario.path), *sipp_args(scenario, work),
        "-i", "127.0.0.1", "-p", "0", "-m", str(rate * seconds), "-r", str(rate), "-rp", "1000",
        "-l", str(rate * 5), "-nostdin", "-timeout", f"{seconds + 20}s",
        "-max_recv_loops", "1000", "-trace_stat", "-stf", str(work / "sipp-stat.csv"),
        *extra, f"127.0.0.1:{port}",
    ]  # fmt: skip


def sipp_step(bench: Bench, proc: ServerProcess, scenario: SippScenario, rate: int) -> Step:
    calls = rate * STEP_SECONDS
    stat, screen = bench.work / "sipp-stat.csv", bench.work / "sipp-screen.txt"
    for path in (stat, screen):
        path.unlink(missing_ok=True)
    screen_args = ("-fd", "1", "-trace_screen", "-screen_file", str(screen))
    command = sipp_command(scenario, bench.work, proc.udp_port, rate, STEP_SECONDS, *screen_args)
    try:
        result, server_cpu, driver_cpu = measured(proc.process.pid, command, STEP_SECONDS + 40)
    except subprocess.TimeoutExpired:  # sipp overran its own -timeout: a failed step
        result, server_cpu, driver_cpu = None, 0.0, 0.0
    header, last = _stat_lines(stat)
    values = dict(zip(header, last, strict=False))
    ok = int(values.get("SuccessfulCall(C)", 0))
    final_screen = screen.read_text(errors="replace") if screen.exists() else ""
    step = Step(
        rate=rate,
        done=ok,
        failed=calls - ok,  # calls still open at sipp's timeout count as failed
        retransmitted=int(values.get("Retransmissions(C)", 0)),
        requests=calls * scenario.requests_per_call,
        server_cpu=server_cpu,
        driver_cpu=driver_cpu,
        screen=final_screen,
    )
    bench.raw.append("$ " + " ".join(command))
    if not step.passed:
        bench.raw.append(_tail(final_screen, 40))
    if result is None:
        bench.raw.append(f"sipp still running after {STEP_SECONDS + 40} s: killed")
    elif ok == 0:
        bench.raw.append((result.stderr or result.stdout)[-2000:])
    return step


def _stat_lines(path: Path) -> tuple[list[str], list[str]]:
    if not path.exists():
        return [], []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < 2:  # sipp stopped before its first statistics line
        return [], []
    return lines[0].split(";"), lines[-1].split(";")


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def search(run_step: Callable[[int], Step], bench: Bench, start: int = 100) -> list[Step]:
    """Doubling steps from `start`/s until one fails, then bisect to within about 10 %."""
    steps: list[Step] = []

    def run(rate: int) -> bool:
        step = run_step(rate)
        steps.append(step)
        bench.log("    " + step.line())
        return step.passed

    if QUICK:
        run(start)
        return steps
    low, high, rate = 0, None, start
    while rate <= 6400:
        if not run(rate):
            high = rate
            break
        low, rate = rate, rate * 2
    for _ in range(3 if high else 0):
        middle = int(round((low + high) / 2, -1))
        if middle in (low, high) or high - low <= max(20, low // 10):
            break
        if run(middle):
            low = middle
        else:
            high = middle
    return steps


def best(steps: list[Step]) -> Step | None:
    passing = [s for s in steps if s.passed]
    return max(passing, key=lambda s: s.rate) if passing else None


def sipp_search(bench: Bench, proc, scenario: SippScenario) -> list[Step]:
    def step(rate: int) -> Step:
        wait_idle(proc.process.pid)
        return sipp_step(bench, proc, scenario, rate)

    return search(step, bench)


def sipp_scenario(bench: Bench, title: str, name: str) -> None:
    """A sipp scenario against our server with digest only (REGISTER)."""
    with bench.server(name) as proc:
        steps = sipp_search(bench, proc, SIPP[name])
    top = best(steps)
    if top is None:
        bench.row(title, "fails at the lowest step", steps[-1].line().strip())
        return
    bench.raw.append(f"sipp screen at {top.rate:.0f} calls/s:\n{_tail(top.screen, 45)}")
    bench.row(title, f"{top.rate:.0f} calls/s", _cpu(top))


def _cpu(step: Step) -> str:
    return f"server CPU {step.server_cpu:.0%} of a core, load generator {step.driver_cpu:.0%}"


# Side by side with Kamailio ----------------------------------------------------------------


@dataclass
class Outcome:
    """One side's result in a compared scenario; `rate` is None when it failed."""

    rate: float | None
    result: str
    detail: str = ""


def compared(bench: Bench, title: str, name: str, measure, ratio_meaningful: bool) -> None:
    """`measure(bench, side, server) -> Outcome` on each side, each against a fresh server;
    one row per side, ours with their share of Kamailio's rate."""
    outcomes: dict[Side, Outcome] = {}
    for side in SIDES:
        bench.log(f"  {side.label}")
        try:
            with bench.target(side, name) as server:
                outcomes[side] = measure(bench, side, server)
        except KamailioFailed:
            raise  # a comparison without Kamailio would mislead: main() stops the run
        except Exception as error:  # one side's failure must not hide the others
            bench.log(f"    error: {error}")
            outcomes[side] = Outcome(None, "error", str(error))
    theirs = outcomes.get(KAMAILIO)
    for side, outcome in outcomes.items():
        ratio = _ratio(side, outcome, theirs, ratio_meaningful)
        bench.log(f"  => {side.label}: {outcome.result}" + (f"; {ratio}" if ratio else ""))
        bench.row(f"{title}: {side.label}", outcome.result, outcome.detail, ratio)


def _ratio(side: Side, ours: Outcome, theirs: Outcome | None, meaningful: bool) -> str:
    if side.kamailio or theirs is None:  # Kamailio's own row, or --no-kamailio
        return ""
    if ours.rate is None or theirs.rate is None:
        return "no ratio: a side failed"
    if not meaningful:  # BENCH_QUICK's one step at the same rate is no search
        return "no ratio in a quick run (one step each)"
    return f"ours is {100 * ours.rate / theirs.rate:.1f} % of Kamailio"


def sipp_side(bench: Bench, side: Side, server, name: str) -> Outcome:
    scenario = (SIPP if side.digest else SIPP_NO_AUTH)[name]
    steps = sipp_search(bench, server, scenario)
    top = best(steps)
    if top is None:
        return Outcome(None, "fails at the lowest step", steps[-1].line().strip())
    screen = _tail(top.screen, 45)
    bench.raw.append(f"{side.label}: sipp screen at {top.rate:.0f} calls/s:\n{screen}")
    return Outcome(top.rate, f"{top.rate:.0f} calls/s", _cpu(top))


def compared_sipp(bench: Bench, title: str, name: str) -> None:
    compared(bench, title, name, partial(sipp_side, name=name), ratio_meaningful=not QUICK)


# Python drivers -------------------------------------------------------------------------


def driver(bench: Bench, proc: ServerProcess, script: str, *args: str, timeout: float = 600):
    """Run one of our Python drivers; return its JSON result and the CPU shares."""
    command = [sys.executable, str(BENCH / script), *args]
    result, server_cpu, driver_cpu = measured(proc.process.pid, command, timeout)
    bench.raw.append("$ " + " ".join(command) + "\n" + result.stdout.strip())
    if result.returncode != 0:
        raise RuntimeError(f"{script} failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1]), server_cpu, driver_cpu


def websocket_register(bench: Bench, title: str) -> None:
    steps = []
    with bench.server("ws") as proc:
        for connections in [10] if QUICK else [1, 10, 50, 200]:
            wait_idle(proc.process.pid)
            out, server_cpu, driver_cpu = driver(
                bench, proc, "ws_driver.py", "register", "--url", proc.ws_url,
                "--connections", str(connections), "--seconds", str(STEP_SECONDS),
            )  # fmt: skip
            step = Step(
                rate=out["rate"],
                done=out["requests"],
                failed=out["failed"],
                server_cpu=server_cpu,
                driver_cpu=driver_cpu,
                detail=f"{connections} connections, p50 {out['p50_ms']:.1f} ms "
                f"p99 {out['p99_ms']:.1f} ms",
            )
            bench.log("    " + step.line())
            steps.append(step)
        top = best(steps)
        target = "issue 7 target: >= 1,000/s per process"
        if top is None:
            bench.row(title, "failed", steps[-1].line().strip(), target)
        else:
            bench.row(title, f"{top.rate:.0f} requests/s", f"{top.detail}; {_cpu(top)}", target)

        levels, batch = ("0", 200) if QUICK else ("0,1000,5000", 500)
        wait_idle(proc.process.pid)
        out, _, _ = driver(
            bench, proc, "ws_driver.py", "open", "--url", proc.ws_url, "--levels", levels,
            "--batch", str(batch),
        )  # fmt: skip
    for level in out["levels"]:
        detail = (
            f"p50 {level['p50_ms']:.0f} ms, p99 {level['p99_ms']:.0f} ms, "
            f"{level['failed']} of {batch} failed"
        )
        bench.log(f"    {level['rate']:.0f} opens/s at {level['fill']} open, {detail}")
        bench.row(
            f"WebSocket open rate (handshake + REGISTER with digest), {level['fill']} open",
            f"{level['rate']:.0f} opens/s",
            detail,
            "issue 7 target: >= 300/s at any fill level",
        )


def fanout_side(bench: Bench, side: Side, server, watchers: int, changes: int) -> Outcome:
    out, server_cpu, driver_cpu = driver(
        bench, server, "fanout.py", "--port", str(server.udp_port),
        "--watchers", str(watchers), "--changes", str(changes),
    )  # fmt: skip
    detail = (
        f"{changes} changes, PUBLISH->NOTIFY p50 {out['p50_ms']:.0f} ms p99 {out['p99_ms']:.0f} ms,"
        f" {out['missing']} missing, {out['retransmitted']} retransmitted,"
        f" {out['publish_refused']} PUBLISH refused;"
        f" server CPU {server_cpu:.0%}, driver {driver_cpu:.0%}"
    )
    if out["first_refusals"]:  # a refusal cascades into 412s: the first says why
        detail += f" (first refused: {'; '.join(out['first_refusals'])})"
    bench.log(f"    {out['notify_rate']:.0f} NOTIFY/s, {detail}")
    return Outcome(out["notify_rate"], f"{out['notify_rate']:.0f} NOTIFY/s", detail)


def fanout(bench: Bench, title: str, watchers: int) -> None:
    """Measured rates, not a search: a ratio means something even in a quick run."""
    changes = 20 if QUICK else 100
    measure = partial(fanout_side, watchers=watchers, changes=changes)
    compared(bench, title, f"fanout{watchers}", measure, ratio_meaningful=True)


def memory(bench: Bench, title: str, count: int) -> None:
    with bench.server("memory") as proc:
        out, _, _ = driver(
            bench, proc, "ws_driver.py", "subscribers", "--url", proc.ws_url,
            "--pid", str(proc.process.pid), "--connections", str(count),
        )  # fmt: skip
    detail = (
        f"RSS {out['rss_before_kb'] / 1024:.0f} -> {out['rss_after_kb'] / 1024:.0f} MiB,"
        f" {out['subscribed']} subscribed, {out['failed']} failed"
    )
    bench.log(f"    {out['kb_per_subscriber']:.1f} KB each, {detail}")
    bench.row(title, f"{out['kb_per_subscriber']:.1f} KB each", detail, "issue 7 target: <= 50 KB")


# XCAP over HTTP (wrk) -------------------------------------------------------------------

XCAP_SECONDS = 2 if QUICK else 5
XCAP_CONNECTIONS = (1, 10, 50)
XCAP_USERS = 1000  # users with a pres-rules document; spread PUTs cycle over them
PRES_RULES_MIME = "application/auth-policy+xml"
PRES_RULES = b"""<?xml version="1.0" encoding="UTF-8"?>
<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules"
 xmlns:pr="urn:ietf:params:xml:ns:pres-rules" xmlns:cr="urn:ietf:params:xml:ns:common-policy">
 <cr:rule id="a">
  <cr:conditions><cr:identity><cr:one id="sip:friend@localhost"/></cr:identity></cr:conditions>
  <cr:actions><pr:sub-handling>allow</pr:sub-handling></cr:actions>
  <cr:transformations>
   <pr:provide-services><pr:all-services/></pr:provide-services>
   <pr:provide-persons><pr:all-persons/></pr:provide-persons>
   <pr:provide-devices><pr:all-devices/></pr:provide-devices>
   <pr:provide-activities>true</pr:provide-activities>
   <pr:provide-note>true</pr:provide-note>
  </cr:transformations>
 </cr:rule>
 <cr:rule id="b">
  <cr:conditions><cr:identity><cr:many domain="localhost"/></cr:identity></cr:conditions>
  <cr:actions><pr:sub-handling>confirm</pr:sub-handling></cr:actions>
 </cr:rule>
 <cr:rule id="c">
  <cr:conditions><cr:identity><cr:one id="sip:pest@example.com"/></cr:identity></cr:conditions>
  <cr:actions><pr:sub-handling>block</pr:sub-handling></cr:actions>
 </cr:rule>
</cr:ruleset>
"""
RULE_A = "/~~/cr:ruleset/cr:rule%5b@id=%22a%22%5d?xmlns(cr=urn:ietf:params:xml:ns:common-policy)"
XCAP_CASES = [  # title, method, users, path suffix
    ("GET of a pres-rules document", "GET", 1, ""),
    ('GET of one rule through a node selector (cr:rule[@id="a"])', "GET", 1, RULE_A),
    (f"PUT replacing pres-rules documents of {XCAP_USERS:,} users", "PUT", XCAP_USERS, ""),
    ("PUT replacing one pres-rules document", "PUT", 1, ""),
]


def xcap_path(i: int, suffix: str = "") -> str:
    return f"/xcap-root/pres-rules/users/sip:u{i}@{DOMAIN}/index{suffix}"


def basic(i: int) -> str:
    return "Basic " + base64.b64encode(f"u{i}@{DOMAIN}:{PASSWORD}".encode()).decode()


def xcap_probe(proc: ServerProcess, method: str, path: str, auth: str, body: bytes) -> None:
    """One request like the load's, so a wrong path or credential fails loudly."""
    connection = http.client.HTTPConnection("127.0.0.1", proc.http_port, timeout=10)
    headers = {"Authorization": auth, **({"Content-Type": PRES_RULES_MIME} if body else {})}
    connection.request(method, path, body=body or None, headers=headers)
    response = connection.getresponse()
    text = response.read()[:300]
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"{method} {path} -> {response.status} {text!r}")


def wrk_step(bench: Bench, proc: ServerProcess, args: list[str], connections: int) -> Step:
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{XCAP_SECONDS}s", "--timeout", "10s", "--latency",
        "-s", str(BENCH / "xcap.lua"), proc.http_url, "--", *args,
    ]  # fmt: skip
    result, server_cpu, driver_cpu = measured(proc.process.pid, command, XCAP_SECONDS + 30)
    bench.raw.append("$ " + " ".join(command) + "\n" + result.stdout.strip())
    out = json.loads(result.stdout.strip().splitlines()[-1])
    errors = sum(out[key] for key in ("connect", "read", "write", "timeout"))
    bad = out["non2xx"] + errors
    failures = f", {out['non2xx']} non-2xx, {errors} socket errors" if bad else ""
    rate = out["requests"] / out["seconds"]
    return Step(
        rate=rate,
        done=out["requests"] - out["non2xx"],
        failed=bad,
        server_cpu=server_cpu,
        driver_cpu=driver_cpu,
        detail=f"{connections} conn. {rate:.0f}/s (p50 {out['p50_ms']:.1f} ms, "
        f"p99 {out['p99_ms']:.1f} ms, {_cpu_per(server_cpu, rate)}{failures})",
    )


def _cpu_per(server_cpu: float, rate: float) -> str:
    return f"server CPU {1000 * server_cpu / max(rate, 1e-9):.1f} ms/request"


def xcap(bench: Bench, title: str) -> None:
    """wrk with Basic over kept-alive connections; then Digest vs Basic from a Python driver."""
    body = bench.work / "pres-rules.xml"
    body.write_bytes(PRES_RULES)
    with bench.server("xcap", XCAP_ALLOW_BASIC="1") as proc:
        proc.manage(
            "shell", "-c", "from django.db import transaction\n"
            "from xcapapi.store import save_document\n"
            f"body = open({str(body)!r}, 'rb').read()\n"
            "with transaction.atomic():\n"
            f"    for i in range({XCAP_USERS}):\n"
            f"        save_document(auid='pres-rules', xui=f'sip:u{{i}}@{DOMAIN}', name='index',"
            " body=body)\n",
        )  # fmt: skip
        for case, method, users, suffix in XCAP_CASES:
            bench.log(f"  {case}")
            put = method == "PUT"
            xcap_probe(proc, method, xcap_path(0, suffix), basic(0), PRES_RULES * put)
            listing = bench.work / f"xcap-{method}-{users}.tsv"
            lines = (f"{xcap_path(i, suffix)}\t{basic(i)}\n" for i in range(users))
            listing.write_text("".join(lines))
            args = [method, str(listing), *([str(body), PRES_RULES_MIME] if put else [])]
            steps = []
            for connections in XCAP_CONNECTIONS:
                wait_idle(proc.process.pid)
                steps.append(wrk_step(bench, proc, args, connections))
                bench.log(f"    {steps[-1].detail}, {_cpu(steps[-1])}")
            top = best(steps) or max(steps, key=lambda s: s.rate)
            detail = "; ".join(s.detail for s in steps) + f"; at the best: {_cpu(top)}"
            verdict = "" if top.passed else " (with failures)"
            bench.row(f"XCAP {case} (wrk, Basic)", f"{top.rate:.0f} requests/s{verdict}", detail)
        rates = {}
        for auth in ("basic", "digest"):
            for connections in (1, 10):
                wait_idle(proc.process.pid)
                out, server_cpu, _ = driver(
                    bench, proc, "xcap_driver.py", "--url", proc.http_url, "--auth", auth,
                    "--connections", str(connections), "--seconds", str(XCAP_SECONDS),
                )  # fmt: skip
                rates[auth, connections] = (
                    f"{out['rate']:.0f}/s (p50 {out['p50_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms"
                    f", {_cpu_per(server_cpu, out['rate'])}, {out['failed']} failed)"
                )
                bench.log(f"    {auth} {connections} conn. {rates[auth, connections]}")
    for connections in (1, 10):
        bench.row(
            f"XCAP GET of a pres-rules document, Digest vs Basic, {connections} conn."
            " (Python driver)",
            f"Digest {rates['digest', connections].split(' ')[0]}, "
            f"Basic {rates['basic', connections].split(' ')[0]}",
            f"Digest {rates['digest', connections]}; Basic {rates['basic', connections]}",
        )


def sipp_version() -> str:
    try:
        out = subprocess.run(["sipp", "-v"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return ""
    return next((line.strip() for line in out.splitlines() if "SIPp" in line), "sipp")


def wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return ""
    return out.split(" [")[0].strip()


# Report ---------------------------------------------------------------------------------


def machine(kamailio: str) -> list[str]:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return [
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"cpus: {os.cpu_count()} x {model}",
        f"python: {platform.python_version()}",
        f"sipp: {sipp_version() or 'not installed'}",
        f"wrk: {wrk_version() or 'not installed'}",
        f"kamailio: {kamailio}",
        f"load average at start: {os.getloadavg()[0]:.2f}",
        f"mode: {'BENCH_QUICK=1 (one short step each)' if QUICK else 'full'}",
    ]


def table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| scenario | result | detail | vs Kamailio / target |", "| --- | --- | --- | --- |"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def scenarios() -> list[tuple[str, str, Callable[[Bench, str], None]]]:
    """(key, title, run) in the order they run; sipp's and wrk's only where installed."""
    sipp, wrk = shutil.which("sipp") is not None, shutil.which("wrk") is not None
    out = []
    if sipp:
        title = "REGISTER with digest over UDP (sipp)"
        out.append(("register-udp", title, partial(sipp_scenario, name="register")))
    title = "REGISTER with digest over WebSocket (closed loop)"
    out.append(("register-ws", title, websocket_register))
    if sipp:
        title = "PUBLISH lifecycle over UDP (sipp; initial, refresh, modify, remove)"
        out.append(("publish", title, partial(compared_sipp, name="publish")))
        title = "SUBSCRIBE dialog over UDP (sipp; SUBSCRIBE, NOTIFY, un-SUBSCRIBE, NOTIFY)"
        out.append(("subscribe", title, partial(compared_sipp, name="subscribe")))
        title = (
            "message-summary round trip over UDP (sipp; PUBLISH, SUBSCRIBE, NOTIFY,"
            " un-SUBSCRIBE, NOTIFY, remove PUBLISH)"
        )
        out.append(("message-summary", title, partial(compared_sipp, name="message-summary")))
    for watchers in [100] if QUICK else [100, 500]:
        title = f"NOTIFY fan-out, {watchers} UDP watchers of one presentity"
        out.append(("fanout", title, partial(fanout, watchers=watchers)))
    title = f"Memory per WebSocket client registered and subscribed, {SUBSCRIBERS} clients"
    out.append(("memory", title, partial(memory, count=SUBSCRIBERS)))
    if wrk:
        out.append(("xcap", "XCAP GET and PUT over HTTP (wrk, Basic auth)", xcap))
    # cluster_bench imports this module as `run`: alias it, or `run.py` would load twice.
    sys.modules.setdefault("run", sys.modules[__name__])
    import cluster_bench

    return out + cluster_bench.scenarios(sipp)


def kamailio_fact(only: set[str], skipped: bool) -> str:
    """Kamailio's version line for the report; KamailioFailed when a compared scenario
    is chosen and Kamailio is missing or cannot load its config."""
    if skipped:
        return "not run (--no-kamailio)"
    if not only & set(COMPARED):
        try:
            return f"{version()} (not run: not needed by the chosen scenarios)"
        except KamailioFailed:
            return "not installed (not needed by the chosen scenarios)"
    line = version()
    check_config()
    settings = " ".join(f"{name}={value}" for name, value in kamailioproc.SETTINGS.items())
    return f"{line}; bench/kamailio/kamailio-presence.cfg, {settings}"


def main() -> int:
    parser = argparse.ArgumentParser(description="Load scenarios; see docs/benchmarks.md.")
    keys = list(dict.fromkeys(key for key, _, _ in scenarios()))
    parser.add_argument("--only", help=f"comma-separated scenarios: {','.join(keys)}")
    parser.add_argument(
        "--no-kamailio", action="store_true", help="our sides only: no Kamailio, no ratios"
    )
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else set(keys)
    if only - set(keys):
        parser.error(f"unknown scenario {', '.join(sorted(only - set(keys)))}")
    if args.no_kamailio:
        SIDES.remove(KAMAILIO)
    started = time.monotonic()
    try:
        facts = machine(kamailio_fact(only, args.no_kamailio))
    except KamailioFailed as error:
        print(f"error: {error}\n(--no-kamailio measures our server alone)", file=sys.stderr)
        return 2
    failure = None
    with tempfile.TemporaryDirectory(prefix="sipws-bench-") as tmp:
        bench = Bench(Path(tmp))
        for line in facts:
            bench.log(line)
        if not shutil.which("sipp"):
            bench.log("sipp not found: UDP scenarios skipped (apt-get install sip-tester)")
        if not shutil.which("wrk"):
            bench.log("wrk not found: the XCAP scenario is skipped (apt-get install wrk)")
        provision(bench.work / "template")
        for key, title, run in scenarios():
            if key not in only:
                continue
            bench.log(f"\n== {title}")
            try:
                run(bench, title)
            except KamailioFailed as error:  # no comparison without it: stop the run
                bench.log(f"    error: {error}")
                bench.row(title, "error: Kamailio failed", str(error))
                failure = error
                break
            except Exception as error:  # one broken scenario must not hide the others
                bench.log(f"    error: {error}")
                bench.row(title, "error", str(error))
    facts.append(f"load average at end: {os.getloadavg()[0]:.2f}")
    bench.log(f"\nfinished in {time.monotonic() - started:.0f} s, {facts[-1]}\n")
    summary = table(bench.rows)
    print(summary)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        "# Benchmark results\n\n"
        + "\n".join(f"- {line}" for line in facts)
        + f"\n\n{summary}\n\n## Raw output\n\n```\n"
        + "\n".join(bench.raw)
        + "\n```\n"
    )
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    if failure is not None:
        print(f"\nerror: the run stopped, Kamailio failed: {failure}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
