"""Shared fixtures: a real server process per test module, with users alice, bob and carol."""

import pytest

from tests.presence import clean_up
from tests.serverproc import provision
from tests.sipclient import SipClient

USERS = [
    ("alice@localhost", "secret"),
    ("bob@localhost", "secret"),
    ("carol@localhost", "secret"),
    ("dave@example.com", "secret"),
]


@pytest.fixture(autouse=True)
def _forget_kept_answers():
    """The test database is emptied between tests without signals, on the connection
    that keeps answers (services/kept): what a test kept would outlive its rows."""
    from sipws.services.kept import forget_everything

    forget_everything()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = provision(tmp_path_factory.mktemp("server"), USERS)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def ua():
    """Make SIP clients: `ua(transport, server, user=...)`. After the test each one's
    publications are removed and its subscriptions ended, then it is closed."""
    made = []

    def make(transport, server, **kwargs):
        client = SipClient(transport, server, **kwargs)
        made.append((client, server))
        return client

    yield make
    for client, server in reversed(made):
        try:
            if server.process is not None:
                clean_up(client, server)
        except Exception:
            pass  # a client a test closed or a server it stopped
        finally:
            client.close()
