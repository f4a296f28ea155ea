"""The Redis nonce-count memory against the machine's real Redis (scale-out mode)."""

import secrets

import pytest
import redis

from sipws.services.replay import RedisReplayGuard

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def guard():
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis at {REDIS_URL} is needed for this test and is not reachable: {error}")
    return RedisReplayGuard(REDIS_URL, lifetime=30)


def test_a_nonce_count_is_accepted_once_and_only_upwards(guard):
    nonce = secrets.token_hex(8)
    assert guard.seen(nonce, 1, 0.0) is False
    assert guard.seen(nonce, 1, 0.0) is True  # replay
    assert guard.seen(nonce, 3, 0.0) is False
    assert guard.seen(nonce, 2, 0.0) is True  # going back down is a replay too


def test_two_nodes_share_the_memory(guard):
    other_node = RedisReplayGuard(REDIS_URL, lifetime=30)
    nonce = secrets.token_hex(8)
    assert guard.seen(nonce, 1, 0.0) is False
    assert other_node.seen(nonce, 1, 0.0) is True
    ttl = guard.client.ttl(f"sipws:nc:{nonce}")
    assert 0 < ttl <= 35
