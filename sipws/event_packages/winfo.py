"""Watcher information (RFC 3857) in the application/watcherinfo+xml format (RFC 3858).

The state is made by the server, not published: who watches a resource, with what
status. This module only renders documents; the engine supplies the watchers.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from .base import EventPackage, register

WINFO_NS = "urn:ietf:params:xml:ns:watcherinfo"
# RFC 3858 §4: why a watcher's status is what it is.
EVENTS = (
    "subscribe",
    "approved",
    "deactivated",
    "probation",
    "rejected",
    "timeout",
    "giveup",
    "noresource",
)


@dataclass(frozen=True)
class WatcherEntry:
    """One <watcher> element: `status` is pending, active, waiting or terminated."""

    id: str
    uri: str
    status: str
    event: str
    display_name: str = ""
    expiration: int | None = None
    duration_subscribed: int | None = None


class WatcherInfoPackage(EventPackage):
    name = "presence.winfo"
    content_types = ("application/watcherinfo+xml",)
    publishable = False


def render(
    resource: str, package: str, version: int, state: str, watchers: list[WatcherEntry]
) -> bytes:
    """A watcherinfo document: `state` is "full" or "partial" (RFC 3858 §4.2)."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<watcherinfo xmlns="{WINFO_NS}" version="{version}" state="{state}">',
        f"<watcher-list resource={quoteattr(resource)} package={quoteattr(package)}>",
    ]
    for watcher in watchers:
        attributes = [
            f"id={quoteattr(watcher.id)}",
            f'status="{watcher.status}"',
            f'event="{watcher.event}"',
        ]
        if watcher.display_name:
            attributes.append(f"display-name={quoteattr(watcher.display_name)}")
        if watcher.expiration is not None:
            attributes.append(f'expiration="{watcher.expiration}"')
        if watcher.duration_subscribed is not None:
            attributes.append(f'duration-subscribed="{watcher.duration_subscribed}"')
        lines.append(f"<watcher {' '.join(attributes)}>{escape(watcher.uri)}</watcher>")
    lines += ["</watcher-list>", "</watcherinfo>"]
    return "\n".join(lines).encode()


winfo = register(WatcherInfoPackage())
