"""The contract every SIP event package implements, and the registry of packages.

The subscription engine (RFC 6665) and the publication engine (RFC 3903) are generic;
what differs per Event header token is which bodies are accepted, how the publications
of one resource combine into one state, what a watcher sees before anything is
published, and how one watcher's view is cut from the state. A package answers those
four questions with pure functions over bytes and registers itself under its name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "BadBody",
    "EventPackage",
    "Publication",
    "for_event",
    "get",
    "media_type",
    "names",
    "register",
]


class BadBody(Exception):
    """A PUBLISH body the package refuses; the engine answers with `status` and `reason`.

    415 for a content type the package does not take (the reply lists `content_types`
    in Accept), 400 for a body of the right type that is broken. `detail` is for the log.
    """

    def __init__(self, status: int, reason: str = "", detail: str = "") -> None:
        reason = reason or ("Unsupported Media Type" if status == 415 else "Bad Request")
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Publication:
    """One live publication of a resource, as the engine hands it to `aggregate`."""

    body: bytes
    content_type: str
    etag: str
    received_time: float
    sender: str = ""


def media_type(content_type: str) -> str:
    """`type/subtype` of a Content-Type value, lower case, parameters dropped."""
    return content_type.split(";", 1)[0].strip().lower()


class EventPackage:
    """Base class of event packages: set the class attributes, override what differs."""

    #: The Event header token, with its package parameter if it has one ("dialog;sla").
    name: str = ""
    #: Media types accepted in PUBLISH; the first is the type NOTIFY bodies carry.
    content_types: tuple[str, ...] = ()
    #: False for packages whose state the server makes itself (presence.winfo).
    publishable: bool = True
    #: Bodies carry a version the server rewrites per subscription (dialog-info).
    versioned: bool = False
    #: A watcher is not sent its own publications back (dialog;sla).
    excludes_own: bool = False

    def validate(self, body: bytes, content_type: str) -> None:
        """Raise `BadBody` unless `body` is an acceptable publication of this package.

        The base class checks only the media type; packages add their body checks.
        """
        if media_type(content_type) not in self.content_types:
            raise BadBody(415, detail=f"{content_type!r} not in {self.content_types}")

    def aggregate(self, presentity_uri: str, publications: Sequence[Publication]) -> bytes | None:
        """Combine the live publications of one resource, newest first, into its state.

        The base class keeps the newest publication, which suits packages whose
        publications replace one another.
        """
        return publications[0].body if publications else None

    def neutral_body(self, presentity_uri: str) -> bytes | None:
        """The body a watcher gets while nothing is published; None sends no body."""
        return None

    def notify_body(
        self, state: bytes | None, view: Callable[[bytes], bytes | None] | None
    ) -> bytes | None:
        """The state as one watcher may see it.

        `view` comes from authorization (pres-rules transformations, a polite block): a
        function cutting this watcher's share out of the state; None shows all of it.
        """
        if state is None or view is None:
            return state
        return view(state)

    def with_version(self, body: bytes, version: int) -> bytes:
        """`body` carrying `version` for one subscription; for `versioned` packages."""
        return body

    def successor(self, previous: bytes, body: bytes) -> bytes:
        """What a publication stores when `body` replaces its `previous` body (a
        modify, or the same device publishing again); the base class stores `body`."""
        return body

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


_registry: dict[str, EventPackage] = {}


def _key(name: str) -> str:
    # "dialog ; sla" and "dialog;sla" are the same package (RFC 3261 §7.3.1 whitespace).
    return ";".join(part.strip() for part in name.split(";"))


def register(package: EventPackage) -> EventPackage:
    """Make `package` the one answering its name, replacing an earlier registration."""
    if not package.name:
        raise ValueError(f"{package!r} has no name")
    if not package.content_types:
        raise ValueError(f"{package!r} has no content types")
    _registry[_key(package.name)] = package
    return package


def get(name: str) -> EventPackage | None:
    """The package for a full package name such as "presence" or "dialog;sla"."""
    package = _registry.get(name)  # names as stored and registered are already keys
    return package if package is not None else _registry.get(_key(name))


def for_event(package: str, params: Sequence[tuple[str, str | None]] = ()) -> EventPackage | None:
    """The package an Event header names: "dialog" with a bare `sla` parameter is
    "dialog;sla" when that is registered (a package parameter), else "dialog"."""
    for key, value in params:
        if value is None and key.lower() != "id":
            found = _registry.get(f"{package};{key.strip().lower()}")
            if found is not None:
                return found
    return get(package)


def names() -> list[str]:
    """Registered event types, sorted, as an Allow-Events header lists them (RFC 6665
    §8.2.2: tokens only, so "dialog;sla" is announced as "dialog")."""
    return sorted({name.split(";", 1)[0] for name in _registry})
