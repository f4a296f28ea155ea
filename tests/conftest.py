"""Shared fixtures: a real server process per test module, with users alice, bob and carol."""

import pytest

from tests.serverproc import provision

USERS = [
    ("alice@localhost", "secret"),
    ("bob@localhost", "secret"),
    ("carol@localhost", "secret"),
    ("dave@example.com", "secret"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = provision(tmp_path_factory.mktemp("server"), USERS)
    proc.start()
    yield proc
    proc.stop()
