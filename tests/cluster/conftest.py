"""Fixtures of the cluster tests: a migrated template database for the session, and per
module a cluster of real processes on a clone of it (see nodes.py).

A module says what it runs with `WORKERS = n` (default 1), `NODES = n` (Daphne nodes,
default 2) and `ENV = {...}` (extra settings for every process).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cluster.nodes import (
    PASSWORD,
    ROOT,
    Cluster,
    drop_database,
    flush_redis,
    new_database,
    require_backends,
)

USERS = (
    "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy "
    "rupert sybil trent victor walter"
).split()
TOKEN = "c1a55e7c0ffee0000000000000000000000000ab"  # the voicemail system's API token
PROVISION = f"""
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from sipws.services.accounts import create_account
for name in {USERS!r}:
    create_account(name + "@localhost", {PASSWORD!r})
Token.objects.create(user=User.objects.create_user("voicemail", is_staff=True), key={TOKEN!r})
"""


@pytest.fixture(scope="session")
def template_database(tmp_path_factory):
    require_backends()
    cluster = Cluster(tmp_path_factory.mktemp("template"), new_database("template0"))
    env = cluster._env("provision")
    try:
        for args in (["migrate", "-v0"], ["shell", "-c", PROVISION]):
            done = subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        yield cluster.database
    finally:
        drop_database(cluster.database)


@pytest.fixture(scope="module")
def cluster(request, template_database, tmp_path_factory):
    module = request.module
    flush_redis()
    running = Cluster(
        tmp_path_factory.mktemp("cluster"),
        new_database(template_database),
        **getattr(module, "ENV", {}),
    )
    try:
        for _ in range(getattr(module, "WORKERS", 1)):
            running.start_worker()
        for _ in range(getattr(module, "NODES", 2)):
            running.start_node()
        yield running
    finally:
        running.stop()
        drop_database(running.database)
        flush_redis()
    # A node's unexpected error shows in its log even when no assertion caught it.
    assert "Traceback" not in running.logs(), running.logs()
