"""A stateful proxy's forwarding and response context (RFC 3261 §16.6, §16.7), sans-IO.

`forward()` makes the copy of a request that goes to one target; `ResponseContext` takes
the final response of every branch (or its timeout) and says when to answer upstream and
with what. The caller sends the bytes and runs the timers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .digest import parse_credentials
from .errors import ParseError
from .message import Headers, Request, Response, make_response
from .uri import NameAddr

# 4xx answers that tell the sender how to resubmit: preferred within their class (step 6).
RESUBMISSION_HINTS = (401, 407, 415, 420, 484)
CHALLENGES = ("WWW-Authenticate", "Proxy-Authenticate")


def forward(
    request: Request,
    target: str,
    via: str,
    *,
    path: Iterable[str] = (),
    is_own: Callable[[str], bool] = lambda host: False,
    realms: Iterable[str] = (),
) -> Request:
    """The copy of `request` sent to `target` (§16.6).

    The Request-URI becomes the target; `via` goes on top; Max-Forwards drops by one;
    Route entries naming us (`is_own(host)`) are consumed from the top (§16.4) and the
    target's `path` (RFC 3327) goes first; credentials for our `realms` stay with us, since
    the recipient has no use for them.
    """
    routes = request.headers.get_all("Route")
    while routes and _names_us(routes[0], is_own):
        routes.pop(0)
    routes = [*path, *routes]
    realms = {realm.lower() for realm in realms}
    headers = Headers()
    headers.add("Via", via)
    for route in routes:
        headers.add("Route", route)
    headers.add("Max-Forwards", str(request.max_forwards - 1))
    for name, value in request.headers:
        if name in ("Max-Forwards", "Route"):
            continue
        if name == "Proxy-Authorization" and _realm(value) in realms:
            continue
        headers.add(name, value)
    return Request(request.method, target, headers, request.body)


def _names_us(route: str, is_own: Callable[[str], bool]) -> bool:
    try:
        return is_own(NameAddr.parse(route).sip_uri.host)
    except ParseError:
        return False


def _realm(value: str) -> str | None:
    credentials = parse_credentials(value)
    return credentials.realm.lower() if credentials is not None else None


def without_top_via(response: Response) -> Response:
    """The response as relayed upstream: our Via, the topmost, removed (§16.7 step 3)."""
    vias = response.headers.get_all("Via")[1:]
    headers = Headers()
    for name, value in response.headers:
        if name != "Via":
            headers.add(name, value)
        elif vias:
            for rest in vias:  # the remaining Vias keep the place of the first
                headers.add("Via", rest)
            vias = []
    return Response(response.status, response.reason, headers, response.body)


class ResponseContext:
    """The final responses of the branches of one forwarded non-INVITE request (§16.7).

    A 2xx is answered at once. A 6xx is too: it is definitive for the user, not one device
    (§21.6), and a non-INVITE branch cannot be cancelled (§9.1), so waiting for the others
    would only delay it. Otherwise the answer waits for every branch, then is the best:
    the lowest class, 4xx answers that guide a resubmission first, challenges of every
    401/407 merged, and a lone 503 turned into 500.
    """

    def __init__(self, request: Request, branches: Iterable[str]) -> None:
        self.request = request
        self.waiting = set(branches)
        self.finals: list[Response] = []
        self.answer: Response | None = None  # what went upstream, once decided

    def receive(self, branch: str, response: Response) -> Response | None:
        """A branch's final response from downstream; what to answer now, if anything."""
        return self._settle(branch, without_top_via(response))

    def fail(self, branch: str, status: int) -> Response | None:
        """A branch that timed out (408, §16.7) or could not be sent (503, §16.9)."""
        return self._settle(branch, make_response(self.request, status))

    def expire(self) -> Response | None:
        """The proxy's own timer fired: the best answer so far, 408 if there is none."""
        if self.answer is not None:
            return None
        self.waiting.clear()
        return self._answer(self.best())

    def _settle(self, branch: str, response: Response) -> Response | None:
        if self.answer is not None or branch not in self.waiting:
            return None  # after the answer, or a branch not ours: nothing more goes upstream
        self.waiting.discard(branch)
        if 200 <= response.status < 300:
            return self._answer(response)
        self.finals.append(response)
        if response.status >= 600 or not self.waiting:
            return self._answer(self.best())
        return None

    def _answer(self, response: Response) -> Response:
        self.answer = response
        return response

    def best(self) -> Response:
        """The response to send upstream from those received so far (step 6 and 7)."""
        if not self.finals:
            return make_response(self.request, 408)
        lowest = min(self.finals, key=_rank)
        if lowest.status == 503:
            # A 503 upstream would say this proxy is unavailable, not the target.
            return make_response(self.request, 500)
        if lowest.status in (401, 407):
            _merge_challenges(lowest, self.finals)
        return lowest

    @property
    def best_status(self) -> int:
        """The status `best()` chooses before a lone 503 becomes 500 (what went wrong)."""
        return min(self.finals, key=_rank).status if self.finals else 408


def _rank(response: Response) -> tuple[int, int]:
    status = response.status
    klass = 0 if status >= 600 else status // 100
    preference = 0 if status in RESUBMISSION_HINTS else 2 if status == 503 else 1
    return klass, preference


def _merge_challenges(chosen: Response, finals: list[Response]) -> None:
    for other in finals:
        if other is chosen or other.status not in (401, 407):
            continue
        for name in CHALLENGES:
            for value in other.headers.get_all(name):
                chosen.headers.add(name, value)
