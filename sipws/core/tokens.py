"""Random tokens (tags, branches, entity-tags) from the OS's CSPRNG, read in blocks.

RFC 3261 §19.3 wants tags and branches cryptographically random. `secrets` asks the
kernel once per token, a system call for every response and NOTIFY; reading 4 KiB at a
time serves a few hundred tokens per call with the same bytes. A forked child drops
its parent's unread bytes, so no two processes hand out the same token.
"""

from __future__ import annotations

import base64
import os
import threading

BLOCK = 4096


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._block, self._used = b"", 0

    def take(self, size: int) -> bytes:
        with self._lock:
            if self._used + size > len(self._block):
                self._block, self._used = os.urandom(max(BLOCK, size)), 0
            start = self._used
            self._used += size
            return self._block[start : self._used]


_pool = _Pool()
os.register_at_fork(after_in_child=_pool._clear)


def token_hex(size: int) -> str:
    """`size` random bytes as hex, as `secrets.token_hex`."""
    return _pool.take(size).hex()


def token_urlsafe(size: int) -> str:
    """`size` random bytes as unpadded URL-safe base64, as `secrets.token_urlsafe`."""
    return base64.urlsafe_b64encode(_pool.take(size)).rstrip(b"=").decode("ascii")
