"""Digest nonce-count memory shared by every node through Redis (scale-out mode).

The embedded default keeps it in process (`core.digest.MemoryReplayGuard`); with several
nodes a replayed (nonce, nc) must be refused whichever node it reaches.
"""

from __future__ import annotations

import redis

# Atomically: refuse an nc not above the highest seen for this nonce, else remember it.
_CHECK_AND_SET = """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= last then return 1 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 0
"""


class RedisReplayGuard:
    def __init__(self, url: str, lifetime: float) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2)
        self.script = self.client.register_script(_CHECK_AND_SET)
        self.ttl = int(lifetime) + 5

    def seen(self, nonce: str, nc: int, now: float) -> bool:
        return bool(self.script(keys=[f"sipws:nc:{nonce}"], args=[nc, self.ttl]))
