"""Helpers for authorization tests over real sockets: pres-rules documents written over
XCAP (Digest), watcher-info bodies read back, and the rows that show what was decided.

Independent of the server's code, like `sipclient`: documents are written as text here
and watcherinfo is read with lxml.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

from lxml import etree

from tests.conftest import USERS
from tests.serverproc import ServerProcess, provision
from tests.xcapapi.client import XcapClient

CP = "urn:ietf:params:xml:ns:common-policy"
PR = "urn:ietf:params:xml:ns:pres-rules"
WINFO_NS = "urn:ietf:params:xml:ns:watcherinfo"
RULES_TYPE = "application/auth-policy+xml"
WINFO_TYPE = "application/watcherinfo+xml"
# The usual users, and presentities enough for each test to watch one of its own.
PRESENTITIES = ("erin", "frank", "grace", "heidi", "ivan", "judy", "kate", "leo")
ACCOUNTS = USERS + [(f"{name}@localhost", "secret") for name in PRESENTITIES]


def start_servers(tmp_path_factory, **configs: dict[str, str]) -> dict[str, ServerProcess]:
    """Start one server per named environment, all at once, on copies of one provisioned
    database (migrations take most of a server's start-up)."""
    template = provision(tmp_path_factory.mktemp("template"), ACCOUNTS)
    databases = sorted(template.data_dir.glob("db.sqlite3*"))
    procs = {}
    for name, env in configs.items():
        data_dir = tmp_path_factory.mktemp(name)
        for database in databases:
            shutil.copy(database, data_dir / database.name)
        procs[name] = ServerProcess(data_dir, **env)
    with ThreadPoolExecutor(len(procs)) as pool:
        futures = [pool.submit(proc.start) for proc in procs.values()]
    failed = [future.exception() for future in futures if future.exception()]
    if failed:
        stop_servers(procs)
        raise failed[0]
    return procs


def stop_servers(procs: dict[str, ServerProcess]) -> None:
    with ThreadPoolExecutor(len(procs)) as pool:
        list(pool.map(ServerProcess.stop, procs.values()))


def aor(name: str) -> str:
    return f"sip:{name}@localhost"


def rule(
    rid: str,
    handling: str = "allow",
    *,
    one: tuple[str, ...] = (),
    many: bool = False,
    transformations: str | None = None,
) -> str:
    """A common-policy rule: identity `one` of these URIs (or `many`, anyone)."""
    identity = "".join(f'<cp:one id="{uri}"/>' for uri in one) + ("<cp:many/>" if many else "")
    conditions = f"<cp:identity>{identity}</cp:identity>" if identity else ""
    parts = [
        f'<cp:rule id="{rid}"><cp:conditions>{conditions}</cp:conditions>',
        f"<cp:actions><pr:sub-handling>{handling}</pr:sub-handling></cp:actions>",
    ]
    if transformations is not None:
        parts.append(f"<cp:transformations>{transformations}</cp:transformations>")
    return "".join(parts) + "</cp:rule>"


def ruleset(*rules: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<cp:ruleset xmlns:cp="{CP}" xmlns:pr="{PR}">' + "".join(rules) + "</cp:ruleset>"
    )


def xcap(server, user: str) -> XcapClient:
    """An XCAP client authenticating as `user` ("alice" or "dave@example.com")."""
    return XcapClient(server.http_url, user if "@" in user else f"{user}@localhost")


def rules_path(aor: str) -> str:
    return f"pres-rules/users/{aor}/index"


def put_rules(server, aor: str, *rules: str):
    """PUT the owner's pres-rules document; assert it was stored (201 or 200)."""
    reply = xcap(server, aor.removeprefix("sip:")).put(rules_path(aor), ruleset(*rules), RULES_TYPE)
    assert reply.status in (200, 201), (reply.status, reply.body)
    return reply


def delete_rules(server, aor: str):
    reply = xcap(server, aor.removeprefix("sip:")).delete(rules_path(aor))
    assert reply.status == 200, (reply.status, reply.body)
    return reply


def documents(server, aor: str, auid: str = "pres-rules") -> list[dict]:
    return server.records(
        "SELECT auid, xui, name, body, etag FROM xcapapi_xcapdocument WHERE xui = ? AND auid = ?",
        (aor, auid),
    )


def watcher_rows(server, presentity: str, event: str = "presence") -> dict[str, dict]:
    """The Watcher table for one presentity: watcher URI -> {status, reason, display}."""
    rows = server.records(
        "SELECT watcher_uri, watcher_display, status, reason FROM sipws_watcher "
        "WHERE presentity_uri = ? AND event = ?",
        (presentity, event),
    )
    return {row.pop("watcher_uri"): row for row in rows}


def subscription_states(server, presentity: str, event: str = "presence") -> dict[str, str]:
    """Live subscriptions to `presentity`: watcher URI -> status."""
    rows = server.rows(
        "SELECT watcher_uri, status FROM sipws_activewatcher WHERE presentity_uri = ? "
        "AND event = ?",
        (presentity, event),
    )
    return dict(rows)


def watcherinfo(body: str) -> tuple[int, str, dict[str, dict]]:
    """(version, state, {watcher URI: its attributes}) of an RFC 3858 document."""
    root = etree.fromstring(body.encode())
    assert root.tag == f"{{{WINFO_NS}}}watcherinfo", body
    found = {}
    for element in root.iter(f"{{{WINFO_NS}}}watcher"):
        found[element.text.strip()] = dict(element.attrib)
    return int(root.get("version")), root.get("state"), found
