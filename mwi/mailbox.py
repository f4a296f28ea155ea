"""A mailbox's message-waiting state: read, set and clear it through the presence engine.

The state is the owner's message-summary publications (sipws Presentity rows), so it
survives restarts, and a REST write and a SIP PUBLISH are the same kind of thing: the
newest one is what watchers get. A REST write replaces the previous REST write (one
publication from the sender `SENDER` that never expires); clearing removes every
message-summary publication of the mailbox, SIP ones included, and watchers get
`Messages-Waiting: no`.

Writes take the same per-presentity locks as SIP PUBLISH (sipws.services.ordering), so
NOTIFYs leave in the order the changes were committed, whichever node made them.
"""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import async_to_sync, sync_to_async

from sipws import runtime
from sipws.event_packages import base as packages
from sipws.models import SipAccount
from sipws.services import notify
from sipws.services.ordering import presentity_lock
from sipws.services.publish import clear_state, set_state
from sipws.services.subscribe import current_state

from .package import NAME, MessageSummary, parse, render

SENDER = "mwi:rest-api"


class NoMailbox(LookupError):
    """No SIP account answers to this mailbox address."""


def find(identity: str) -> str:
    """The AOR of the SIP account `user@domain` (domain case-insensitive), or NoMailbox."""
    username, at, domain = identity.removeprefix("sip:").rpartition("@")
    if not at or not username or not domain:
        raise NoMailbox(identity)
    account = SipAccount.objects.filter(username=username, domain=domain.lower()).first()
    if account is None:
        raise NoMailbox(identity)
    return account.aor


def read(aor: str) -> MessageSummary:
    """The state watchers of `aor` get now (`Messages-Waiting: no` when none is set)."""
    return parse(current_state(packages.get(NAME), aor))


def do_set(aor: str, summary: MessageSummary) -> MessageSummary:
    """Make `summary` the mailbox's state and notify its watchers; return it as stored."""
    body = render(summary)
    server = runtime.get_server()
    _change(aor, lambda: set_state(server, aor, packages.get(NAME), body, sender=SENDER))
    return parse(body)


def do_clear(aor: str) -> None:
    """Remove every message-summary publication of the mailbox and notify its watchers."""
    server = runtime.get_server()
    _change(aor, lambda: clear_state(server, aor, packages.get(NAME)))


def _change(aor: str, work: Callable[[], list[notify.Outgoing]]) -> None:
    async def locked() -> None:
        # Held until the NOTIFYs are handed on, so they keep commit order across nodes.
        async with presentity_lock(aor):
            outgoing = await sync_to_async(work)()
            await notify.send(runtime.get_server(), outgoing)

    async_to_sync(locked)()
