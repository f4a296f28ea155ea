"""How MWI plugs into the SIP side (installed by MwiConfig.ready).

- the message-summary package, and its policy: only the mailbox owner subscribes;
- who may PUBLISH message-summary: the mailbox owner, and a voicemail system speaking
  SIP, whose SIP account belongs to a staff user or one holding `mwi.push_mwi` (the same
  rule as the REST API's token users).
"""

from __future__ import annotations

from sipws.services import policy

from . import package


def may_push(user) -> bool:
    """Whether a Django user may set any mailbox's message-waiting state."""
    if user is None or not user.is_active:
        return False
    return user.is_staff or user.has_perm("mwi.push_mwi")


def voicemail_publisher(account, presentity: str) -> bool:
    return may_push(account.user)


def install() -> None:
    package.install()
    policy.register_publisher(package.NAME, voicemail_publisher)
