"""Non-INVITE server and client transactions of RFC 3261 §17, as data with pulled timers.

The caller computes each transaction key from the message (top Via branch, sent-by and
method, with the ACK/CANCEL rules of §17.2.3) and sends the bytes itself; this module only
decides. Time is injected: every call takes `now`, and the owner asks `get_timer()` for the
earliest deadline and calls `handle_timer(now)` when it passes, as in aioquic.

Both state machines are the table `TRANSITIONS` (a pair missing from it is an input the
state ignores) plus, for servers, `ON_RETRANSMISSION`. Terminated transactions are removed.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T1 = 0.5  # RTT estimate
T2 = 4.0  # longest retransmit interval for non-INVITE requests
T4 = 5.0  # longest time a message stays in the network

TransactionKey = Hashable


class _Member(enum.Enum):
    """Members hashed by identity, which is how they compare: Enum's own __hash__ is
    Python code, and the tables below are looked up for every request and response."""

    __hash__ = object.__hash__


class State(_Member):
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"


class Response(_Member):
    """A response seen as input to a state machine: its class is all that matters."""

    PROVISIONAL = "1xx"
    FINAL = "2xx-6xx"

    @classmethod
    def of(cls, status: int) -> Response:
        if not 100 <= status <= 699:
            raise ValueError(f"not a SIP status code: {status}")
        return cls.PROVISIONAL if status < 200 else cls.FINAL


# Figures 6 (§17.1.2, client) and 8 (§17.2.2, server): both non-INVITE machines move on
# the class of a response, received by the client or sent by the server's application.
TRANSITIONS: dict[tuple[State, Response], State] = {
    (State.TRYING, Response.PROVISIONAL): State.PROCEEDING,
    (State.TRYING, Response.FINAL): State.COMPLETED,
    (State.PROCEEDING, Response.PROVISIONAL): State.PROCEEDING,
    (State.PROCEEDING, Response.FINAL): State.COMPLETED,
}


@dataclass(eq=False, slots=True)
class _Entry:
    """What the timer heap needs of a transaction; subclasses add the timers."""

    key: TransactionKey
    reliable: bool
    state: State = State.TRYING
    alive: bool = True


EntryT = TypeVar("EntryT", bound=_Entry)


class _Timers(Generic[EntryT]):
    """A min-heap of (deadline, seq, owner, name) with lazy deletion.

    An item is live while its owner still holds `name` with that deadline; cancelling a
    timer is setting the owner's attribute to None. Every transaction leaves at most a few
    dead items, each popped once its deadline passes, so the heap stays proportional to
    the transactions of the last 64*T1 seconds.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, EntryT, str]] = []
        self._seq = 0

    def schedule(self, owner: EntryT, name: str, deadline: float) -> None:
        setattr(owner, name, deadline)
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, owner, name))

    def _live(self, item: tuple[float, int, EntryT, str]) -> bool:
        deadline, _, owner, name = item
        return owner.alive and getattr(owner, name) == deadline

    def earliest(self) -> float | None:
        heap = self._heap
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> tuple[EntryT, str] | None:
        """The next live timer due at `now`, already disarmed; None when none is due."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)
            if self._live(item):
                _, _, owner, name = item
                setattr(owner, name, None)
                return owner, name
        return None

    def __len__(self) -> int:
        return len(self._heap)


class _Transactions(Generic[EntryT]):
    """The transactions of one kind by key, with their timers."""

    def __init__(self) -> None:
        self._entries: dict[TransactionKey, EntryT] = {}
        self._timers: _Timers[EntryT] = _Timers()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: TransactionKey) -> bool:
        return key in self._entries

    def state(self, key: TransactionKey) -> State | None:
        entry = self._entries.get(key)
        return entry.state if entry is not None else None

    def get_timer(self) -> float | None:
        """The earliest deadline, for the owner to call `handle_timer` then."""
        return self._timers.earliest()

    def _advance(self, key: TransactionKey, status: int) -> EntryT | None:
        """Apply a response to the transaction; the entry if its state moved."""
        response = Response.of(status)
        entry = self._entries.get(key)
        if entry is None:
            return None
        next_state = TRANSITIONS.get((entry.state, response))
        if next_state is None:
            return None
        entry.state = next_state
        return entry

    def _remove(self, entry: EntryT) -> None:
        entry.alive = False
        del self._entries[entry.key]


# Server transactions --------------------------------------------------------------------


class Disposition(enum.Enum):
    NEW = "new"  # a new request: hand it to the application
    ABSORB = "absorb"  # retransmission while Trying: drop it
    REPLAY = "replay"  # retransmission after a response: send `data` again
    OVERLOADED = "overloaded"  # no room for another transaction: answer 503 statelessly


@dataclass(frozen=True, slots=True)
class ServerAction:
    """What to do with a received request."""

    disposition: Disposition
    data: bytes = b""


_NEW = ServerAction(Disposition.NEW)
_ABSORB = ServerAction(Disposition.ABSORB)
_OVERLOADED = ServerAction(Disposition.OVERLOADED)

# §17.2.2: what a retransmitted request gets in each state.
ON_RETRANSMISSION: dict[State, Disposition] = {
    State.TRYING: Disposition.ABSORB,
    State.PROCEEDING: Disposition.REPLAY,
    State.COMPLETED: Disposition.REPLAY,
}


@dataclass(eq=False, slots=True)
class _ServerEntry(_Entry):
    last_response: bytes = b""
    # Timer J, or while no final response exists the give-up deadline (see below).
    expires_at: float | None = None


class ServerTransactions(_Transactions[_ServerEntry]):
    """All non-INVITE server transactions of one SIP endpoint (§17.2.2).

    A request the application never answers is forgotten after 64*T1, when the client's
    Timer F has fired and it has given up; this keeps memory bounded even if a handler
    is lost.
    """

    def __init__(self, *, t1: float = T1, max_entries: int = 200_000) -> None:
        super().__init__()
        self.timer_j = 64 * t1
        self.max_entries = max_entries

    def receive_request(self, key: TransactionKey, now: float, reliable: bool) -> ServerAction:
        entry = self._entries.get(key)
        if entry is not None:
            if ON_RETRANSMISSION[entry.state] is Disposition.ABSORB:
                return _ABSORB
            return ServerAction(Disposition.REPLAY, entry.last_response)
        if len(self._entries) >= self.max_entries:
            self.handle_timer(now)
            if len(self._entries) >= self.max_entries:
                return _OVERLOADED
        entry = _ServerEntry(key, reliable)
        self._entries[key] = entry
        self._timers.schedule(entry, "expires_at", now + self.timer_j)
        return _NEW

    def send_response(self, key: TransactionKey, status: int, data: bytes, now: float) -> None:
        """Record a response the caller is sending. Unknown or completed keys are ignored."""
        entry = self._advance(key, status)
        if entry is None:
            return
        entry.last_response = data
        if entry.state is State.COMPLETED:
            if entry.reliable:
                self._remove(entry)
            else:
                self._timers.schedule(entry, "expires_at", now + self.timer_j)

    def handle_timer(self, now: float) -> None:
        while (due := self._timers.pop_due(now)) is not None:
            entry, _ = due
            self._remove(entry)


# Client transactions --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retransmit:
    """Timer E fired: send the request again."""

    key: TransactionKey
    data: bytes


@dataclass(frozen=True, slots=True)
class Timeout:
    """Timer F fired without a final response: act as on a 408."""

    key: TransactionKey


@dataclass(frozen=True, slots=True)
class FinalResponse:
    """The first final response of the transaction; duplicates are absorbed."""

    key: TransactionKey
    status: int


ClientEvent = Retransmit | Timeout | FinalResponse


@dataclass(eq=False, slots=True)
class _ClientEntry(_Entry):
    data: bytes = b""
    interval: float = T1  # the Timer E value last armed
    timer_e: float | None = None
    timer_f: float | None = None
    timer_k: float | None = None


class ClientTransactions(_Transactions[_ClientEntry]):
    """Our own outgoing non-INVITE requests (NOTIFY, relayed MESSAGE), §17.1.2."""

    def __init__(self, *, t1: float = T1, t2: float = T2, t4: float = T4) -> None:
        super().__init__()
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
        self.timer_f = 64 * t1

    def start(self, key: TransactionKey, data: bytes, now: float, reliable: bool) -> None:
        """Track a request the caller has just sent once."""
        if key in self._entries:
            raise ValueError(f"client transaction already exists: {key!r}")
        entry = _ClientEntry(key, reliable, data=data, interval=self.t1)
        self._entries[key] = entry
        if not reliable:
            self._timers.schedule(entry, "timer_e", now + self.t1)
        self._timers.schedule(entry, "timer_f", now + self.timer_f)

    def receive_response(
        self, key: TransactionKey, status: int, now: float
    ) -> FinalResponse | None:
        entry = self._advance(key, status)
        if entry is None:
            return None
        if entry.state is State.PROCEEDING:
            # The armed Timer E still fires; from then on it is reset to T2 (§17.1.2.2).
            return None
        entry.timer_e = entry.timer_f = None
        if entry.reliable:
            self._remove(entry)
        else:
            self._timers.schedule(entry, "timer_k", now + self.t4)
        return FinalResponse(key, status)

    def cancel(self, key: TransactionKey) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            self._remove(entry)

    def handle_timer(self, now: float) -> list[ClientEvent]:
        events: list[ClientEvent] = []
        while (due := self._timers.pop_due(now)) is not None:
            entry, name = due
            if name == "timer_e":
                events.append(Retransmit(entry.key, entry.data))
                self._rearm_e(entry, now)
            elif name == "timer_f":
                events.append(Timeout(entry.key))
                self._remove(entry)
            else:  # timer_k: the wait for response retransmissions is over
                self._remove(entry)
        return events

    def _rearm_e(self, entry: _ClientEntry, now: float) -> None:
        if entry.state is State.TRYING:
            entry.interval = min(2 * entry.interval, self.t2)
        else:
            entry.interval = self.t2
        self._timers.schedule(entry, "timer_e", now + entry.interval)
