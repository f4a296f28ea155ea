"""XCAP servers for the integration tests: module-scoped, with alice, bob, carol (staff) and
dave@example.com, password `secret`."""

import pytest
from lxml import etree

from tests.serverproc import ServerProcess
from tests.xcapapi.client import XcapClient
from xcapapi.usages.base import load_schema

USERS = [
    ("alice@localhost", "secret"),
    ("bob@localhost", "secret"),
    ("carol@localhost", "secret"),
    ("dave@example.com", "secret"),
]
PROVISION = "\n".join(
    [
        "from django.contrib.auth.models import User",
        "from sipws.services.accounts import create_account",
        *(f"create_account({identity!r}, {password!r})" for identity, password in USERS),
        "User.objects.filter(username='carol@localhost').update(is_staff=True)",
    ]
)
ERROR_SCHEMA = load_schema("xcap-error.xsd")


def start_xcap_server(tmp_path_factory, **env):
    """Migrate a fresh database, add the users (carol is staff) and start the server."""
    proc = ServerProcess(tmp_path_factory.mktemp("xcap"), **env)
    proc.manage("migrate", "-v0")
    proc.manage("shell", "-c", PROVISION)
    return proc.start()


@pytest.fixture(scope="module")
def xcap_server(tmp_path_factory):
    proc = start_xcap_server(tmp_path_factory)
    yield proc
    proc.stop()


@pytest.fixture
def client(xcap_server):
    """client("alice") -> an XcapClient for alice@localhost."""

    def make(user=None, **kwargs):
        if user and "@" not in user:
            user = f"{user}@localhost"
        return XcapClient(xcap_server.http_url, user, **kwargs)

    return make


def assert_conflict(reply, condition: str) -> etree._Element:
    """A 409 whose body is an xcap-error document naming `condition`."""
    assert reply.status == 409, (reply.status, reply.body)
    assert reply.header("Content-Type").startswith("application/xcap-error+xml")
    root = etree.fromstring(reply.body)
    assert ERROR_SCHEMA.validate(root), ERROR_SCHEMA.error_log
    [element] = list(root)
    assert etree.QName(element).localname == condition, reply.body
    return element
