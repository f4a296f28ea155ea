"""One server for the operations tests, with the expiry timer off (Kamailio's
clean_period <= 0, so that only the cleanup operation removes expired state) and short
expiries allowed, plus API tokens for a staff and a plain user."""

import pytest

from tests.conftest import USERS
from tests.operations.helpers import Api, make_tokens
from tests.serverproc import provision

OPS_ENV = {
    "PRESENCE_EXPIRY_INTERVAL": "3600",
    "PRESENCE_PUBLISH_MIN_EXPIRES": "1",
    "PRESENCE_SUBSCRIBE_MIN_EXPIRES": "1",
    "SIP_REGISTER_MIN_EXPIRES": "1",
}


@pytest.fixture(scope="package")
def server(tmp_path_factory):
    proc = provision(tmp_path_factory.mktemp("ops"), USERS, **OPS_ENV)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="package")
def tokens(server):
    return make_tokens(server)


@pytest.fixture(scope="package")
def api(server, tokens):
    return Api(server, tokens["staff"])
