"""Subscription authorization: who may watch whom (the hook pres-rules plug into).

Each event package may register a policy; without one, an authenticated subscription is
active. `xcapapi` registers the pres-rules policy for presence when it is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    status: str  # active | pending | terminated
    reason: str = ""  # for terminated: rejected, ...; polite-block is active with no body
    view: object | None = None  # what the package's notify_body may show this watcher


ALLOW = Decision("active")
Policy = Callable[[str, str], Decision]  # (watcher AOR, presentity AOR) -> Decision
_policies: dict[str, Policy] = {}


def register(event: str, policy: Policy) -> None:
    _policies[event] = policy


def decide(event: str, watcher: str, presentity: str) -> Decision:
    policy = _policies.get(event)
    return policy(watcher, presentity) if policy is not None else ALLOW
