"""`manage.py sipuser` as an admin scripts it, against the database of a running server."""

import hashlib
import re

import pytest

from tests.sipclient import SipClient

LIST_LINE = re.compile(r"[^@\s]+@\S+  (enabled|disabled)")


def sipuser(server, *args: str):
    return server.manage("sipuser", *args, check=False)


def listing(server) -> list[str]:
    result = sipuser(server, "list")
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def authenticate(server, login: str, *passwords: str) -> list[str]:
    """What Django's authenticate() returns for each password, as printed."""
    script = "from django.contrib.auth import authenticate\n" + "".join(
        f"print(authenticate(username={login!r}, password={p!r}))\n" for p in passwords
    )
    return server.manage("shell", "--no-imports", "-c", script).stdout.splitlines()


def account(server, username: str, domain: str = "localhost") -> dict | None:
    rows = server.records(
        "SELECT * FROM sipws_sipaccount WHERE username = ? AND domain = ?", (username, domain)
    )
    return rows[0] if rows else None


def register(server, user: str, password: str) -> int:
    client = SipClient("udp", server, user=user, password=password)
    try:
        return client.send_authenticated("REGISTER", expires=600).status
    finally:
        client.close()


def add(server, identity: str, password: str) -> None:
    result = sipuser(server, "add", identity, "--password", password)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"added {identity}"


def test_add_creates_the_sip_user_and_its_django_login(server):
    add(server, "alice2@localhost", "pw-one")

    row = account(server, "alice2")
    assert row is not None and row["enabled"] == 1
    assert authenticate(server, "alice2@localhost", "pw-one", "wrong") == [
        "alice2@localhost",
        "None",
    ]
    assert register(server, "alice2", "pw-one") == 200


def test_password_is_stored_only_as_ha1_hashes(server):
    add(server, "hashed@example.com", "Clear-Text-42")

    row = account(server, "hashed", "example.com")
    assert not [k for k, v in row.items() if "Clear-Text-42" in str(v)]
    assert row["ha1_md5"] == hashlib.md5(b"hashed:example.com:Clear-Text-42").hexdigest()
    assert row["ha1_sha256"] == hashlib.sha256(b"hashed:example.com:Clear-Text-42").hexdigest()
    [(login_hash,)] = server.rows(
        "SELECT password FROM auth_user WHERE username = ?", ("hashed@example.com",)
    )
    assert "Clear-Text-42" not in login_hash and login_hash.count("$") >= 2


@pytest.mark.parametrize(
    "args, error",
    [
        (("add", "dupe@localhost", "--password", "other"), "already exists"),
        (("add", "eve@nowhere.test", "--password", "x"), "is not served"),
        (("add", "not-an-identity", "--password", "x"), "not a SIP identity"),
        (("add", "nopw@localhost", "--password", ""), "password is required"),
        (("passwd", "nobody@localhost", "--password", "x"), "no such SIP user"),
        (("delete", "nobody@localhost"), "no such SIP user"),
    ],
)
def test_failures_exit_non_zero_with_one_line(server, args, error):
    if account(server, "dupe") is None:
        add(server, "dupe@localhost", "first")
    before = server.rows("SELECT * FROM sipws_sipaccount ORDER BY id")

    result = sipuser(server, *args)

    assert result.returncode != 0
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert error in line
    assert server.rows("SELECT * FROM sipws_sipaccount ORDER BY id") == before
    assert account(server, "eve", "nowhere.test") is None


def test_list_enable_disable(server):
    add(server, "listed@localhost", "pw")
    assert register(server, "listed", "pw") == 200  # the running server now knows the account

    result = sipuser(server, "disable", "listed@localhost")

    assert result.returncode == 0 and result.stdout.strip() == "listed@localhost disabled"
    lines = listing(server)
    assert all(LIST_LINE.fullmatch(line) for line in lines), lines
    assert {"alice@localhost  enabled", "dave@example.com  enabled"} <= set(lines)
    assert "listed@localhost  disabled" in lines
    assert register(server, "listed", "pw") == 403

    result = sipuser(server, "enable", "listed@localhost")
    assert result.returncode == 0 and result.stdout.strip() == "listed@localhost enabled"
    assert register(server, "listed", "pw") == 200


def test_passwd_changes_both_sip_and_login_passwords(server):
    add(server, "changer@localhost", "old-pw")
    assert register(server, "changer", "old-pw") == 200

    result = sipuser(server, "passwd", "changer@localhost", "--password", "new-pw")

    assert result.returncode == 0, result.stderr
    assert register(server, "changer", "new-pw") == 200
    assert register(server, "changer", "old-pw") == 403
    row = account(server, "changer")
    assert row["ha1_md5"] == hashlib.md5(b"changer:localhost:new-pw").hexdigest()
    assert authenticate(server, "changer@localhost", "new-pw", "old-pw") == [
        "changer@localhost",
        "None",
    ]


def test_delete_removes_account_login_and_bindings(server):
    add(server, "leaver@localhost", "pw")
    assert register(server, "leaver", "pw") == 200

    result = sipuser(server, "delete", "leaver@localhost")

    assert result.returncode == 0, result.stderr
    assert account(server, "leaver") is None
    assert server.rows("SELECT id FROM auth_user WHERE username = 'leaver@localhost'") == []
    assert server.rows("SELECT id FROM sipws_registration WHERE aor = 'sip:leaver@localhost'") == []
    assert not [line for line in listing(server) if line.startswith("leaver@")]
    assert register(server, "leaver", "pw") == 403
