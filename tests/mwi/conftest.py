"""An MWI server for the integration tests, module-scoped, with Django users besides the SIP
users alice, bob, carol and dave@example.com:

- `voicemail`: not staff, holds mwi.push_mwi, has an API token (a voicemail system);
- `nobody`: not staff, no permission, has an API token;
- `admin`: staff, password `adminpw`, logs in to /admin/ (a session);
- `vm@localhost`: a SIP account whose login holds mwi.push_mwi (a voicemail system
  speaking SIP).

Tokens are made with `manage.py drf_create_token`, as the README tells an operator to.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import USERS
from tests.mwi.api import Api
from tests.serverproc import ServerProcess, provision

PROVISION = """
import json, re
from io import StringIO
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from sipws.services.accounts import create_account

push = Permission.objects.get(content_type__app_label="mwi", codename="push_mwi")
User.objects.create_user("voicemail", password="vmpw").user_permissions.add(push)
User.objects.create_user("nobody", password="nobodypw")
User.objects.create_user("admin", password="adminpw", is_staff=True)
create_account("vm@localhost", "secret").user.user_permissions.add(push)
tokens = {}
for user in ("voicemail", "nobody"):
    out = StringIO()
    call_command("drf_create_token", user, stdout=out)
    tokens[user] = re.search(r"Generated token (\\w+) for user", out.getvalue()).group(1)
print(json.dumps(tokens))
"""


def provision_mwi(data_dir) -> tuple[ServerProcess, dict[str, str]]:
    """A migrated database with the users above; returns the server and the tokens."""
    proc = provision(data_dir, USERS)
    output = proc.manage("shell", "-c", PROVISION).stdout
    return proc, json.loads(output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def mwi_setup(tmp_path_factory):
    proc, tokens = provision_mwi(tmp_path_factory.mktemp("mwi"))
    proc.start()
    yield proc, tokens
    proc.stop()
    # Bad input gets its 4xx from validation, never from an exception in the server.
    assert "Traceback" not in "".join(proc.output), "".join(proc.output)


@pytest.fixture
def mwi_server(mwi_setup):
    return mwi_setup[0]


@pytest.fixture
def api(mwi_setup):
    """An API client with the voicemail token; `api.as_token(...)` for others."""
    proc, tokens = mwi_setup
    client = Api(proc.http_url, token=tokens["voicemail"], tokens=tokens)
    yield client
    # Every test starts from no state: clear what it left (REST and SIP alike).
    for mailbox in ("alice@localhost", "bob@localhost"):
        client.delete(f"/api/mwi/{mailbox}/")
