"""Subscription authorization: who may watch whom (the hook pres-rules plug into).

Each event package may register a policy; without one, an authenticated subscription is
active and sees everything. `xcapapi` registers the pres-rules policy for presence.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """`status` active/pending/terminated with `reason` (rejected, ...); for an active
    watcher `view` cuts its share out of the state (None: all of it), and watchers with
    equal `view_key` see the same body, so it is computed once for all of them."""

    status: str
    reason: str = ""
    view: Callable[[bytes], bytes | None] | None = None
    view_key: Hashable = None


ALLOW = Decision("active")
FORBIDDEN = Decision("forbidden", "not allowed to subscribe")  # answered 403, nothing kept
Policy = Callable[[str, str], Decision]  # (watcher AOR, presentity AOR) -> Decision
_policies: dict[str, Policy] = {}


def register(event: str, policy: Policy) -> None:
    _policies[event] = policy


def decide(event: str, watcher: str, presentity: str) -> Decision:
    policy = _policies.get(event)
    return policy(watcher, presentity) if policy is not None else ALLOW


# Who may PUBLISH another user's state, per event: a package registers a check taking the
# authenticated SipAccount and the presentity AOR (mwi: a voicemail system's account may
# publish any mailbox's message-summary). A user may always publish its own.
PublishCheck = Callable[[object, str], bool]
_publishers: dict[str, PublishCheck] = {}


def register_publisher(event: str, check: PublishCheck) -> None:
    _publishers[event] = check


def may_publish(event: str, account, presentity: str) -> bool:
    if account.aor == presentity:
        return True
    check = _publishers.get(event)
    return check is not None and check(account, presentity)


_batch: ContextVar[dict | None] = ContextVar("policy_batch", default=None)


class _Batch:
    """The context manager `batch()` returns (a class: a generator-based one cost more
    than the lookups it saves, and every SUBSCRIBE and NOTIFY opens one)."""

    __slots__ = ("token",)

    def __enter__(self) -> None:
        self.token = _batch.set({}) if _batch.get() is None else None

    def __exit__(self, *exc) -> None:
        if self.token is not None:
            _batch.reset(self.token)


def batch() -> _Batch:
    """Decisions made inside share `batch_cache()`: one NOTIFY fan-out reads a
    presentity's rules once, not once per watcher. A batch inside a batch is the outer
    one, so a SUBSCRIBE deciding and then NOTIFYing reads the rules once too."""
    return _Batch()


def batch_cache() -> dict | None:
    """The current batch's scratch space for policies, or None outside a batch."""
    return _batch.get()
