"""An in-process channel layer whose receive costs O(1) whatever the number of channels.

Channels' InMemoryChannelLayer sweeps every channel for expired messages on every
receive and group_send, so each new WebSocket consumer costs O(open connections). This
layer keeps its behaviour but sweeps at most once per `clean_interval` seconds.
"""

import time

from channels.layers import InMemoryChannelLayer


class LocalChannelLayer(InMemoryChannelLayer):
    def __init__(self, clean_interval: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.clean_interval = clean_interval
        self._next_clean = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_clean:
            return
        self._next_clean = now + self.clean_interval
        super()._clean_expired()
