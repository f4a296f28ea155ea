"""Rules kept on an external XCAP server: fetched when needed, cached, kept fresh.

Kamailio's presence_xml with `integrated_xcap_server=0` and its xcap_client. When
XCAP_EXTERNAL_ROOT is set, a presentity's pres-rules (RFC 5025, and the OMA auid) and
pidf-manipulation (RFC 4827) documents live on that server. Presence reads only the
copies fetched from it: `XcapDocument` rows with `source=EXTERNAL` and the external ETag.
The integrated XCAP server serves those copies read-only.

Why presence never waits for HTTP: `policy.ruleset_for` runs inside a SIP request's one
database call, on the single database thread that every SIP request shares. A synchronous
fetch there, even with a short timeout, would stall all SIP traffic while the external
server is slow, and for the whole timeout on every miss while it is down. So a cache miss
only records the XUI (a set insert under a lock) and the request is decided at once by
PRESENCE_DEFAULT_POLICY, as Kamailio decides when its `xcap` table has no row. The fetch
runs on the event loop with the HTTP GET in a worker thread. Its result is stored through
`store.save_document`, whose `document_changed` signal re-decides the watchers exactly as
after a local PUT (pending → active, with a NOTIFY). The price is that a first watcher may
see pending before active; RFC 6665 allows that, and every later one is decided by the
cached rules.

- Misses are fetched by a job on the SIP timer loop (`runtime.every`), in whichever
  process missed; a 404 is remembered there, so it is not asked again per SUBSCRIBE.
- Every XCAP_EXTERNAL_POLL_INTERVAL seconds the process owning the SIP sockets (runsip,
  sipworker) revalidates with conditional GETs the cached documents and those of every
  presentity with live watchers: 304 keeps the copy, 200 replaces it, 404 deletes it.
  0 turns polling off (Kamailio's `periodical_query=0`): then the external server's
  operator calls the refresh endpoint (`api`) or `manage.py xcaprefresh`, which reaches
  the running server over its control socket (Kamailio's `refreshXcapDoc` RPC).
- An unreachable server keeps every cached copy; that is logged once a minute, and a
  presentity whose fetch failed is tried again after RETRY_UNREACHABLE seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict

from channels.db import database_sync_to_async
from django.conf import settings

from sipws import runtime, xmlsafe
from sipws.models import ActiveWatcher, SubscriptionStatus
from sipws.services import operations
from sipws.services.logonce import log_once
from sipws.services.settingcache import setting

from . import store
from .models import XcapDocument
from .uri import canonical_xui
from .xcap_client import Fetched, XcapClient, XcapClientError

log = logging.getLogger("xcapapi.external")
AUIDS = ("pres-rules", "org.openmobilealliance.pres-rules", "pidf-manipulation")
DOCUMENT = "index"
EXTERNAL = XcapDocument.Source.EXTERNAL
CONCURRENCY = 4  # GETs in flight at once per process
RETRY_UNREACHABLE = 30.0
_MAX_REMEMBERED = 10_000
_ETAG_FIELD = XcapDocument._meta.get_field("etag").max_length

# What a refresh did to each document.
CREATED, CHANGED, UNCHANGED = "created", "changed", "unchanged"
ABSENT, DELETED = "absent", "deleted"
INVALID, ERROR, UNREACHABLE = "invalid", "error", "unreachable"


def enabled() -> bool:
    return bool(setting("XCAP")["EXTERNAL_ROOT"])


def manages(auid: str) -> bool:
    """Whether documents of `auid` come from the external server (read-only here)."""
    return auid in AUIDS and enabled()


_fetcher: ExternalXcap | None = None


def fetcher() -> ExternalXcap:
    global _fetcher
    if _fetcher is None:
        _fetcher = ExternalXcap.from_settings()
    return _fetcher


def want(xui: str) -> None:
    """A cache miss for a presentity's documents: have them fetched. Cheap, any thread."""
    if enabled():
        fetcher().want(xui)


def presentity_xui(text: str) -> str:
    """`sip:alice@Example.com` as documents are stored under it; ValueError otherwise."""
    parsed = canonical_xui(text.strip())
    if parsed is None:
        raise ValueError("not an XUI of the form sip:user@domain")
    user, domain = parsed
    if domain not in settings.SIP["DOMAINS"]:
        raise ValueError(f"the domain {domain} is not served here")
    return f"sip:{user}@{domain}"


async def do_refresh(server, xui: str, auid: str | None = None) -> operations.Outcome:
    """The control socket's `xcaprefresh` (`manage.py xcaprefresh`): fetch one presentity's
    documents now and say what changed. Watchers were told through `document_changed`."""
    if not enabled():
        raise operations.OperationError("XCAP_EXTERNAL_ROOT is not set", 409)
    if auid is not None and auid not in AUIDS:
        raise operations.OperationError(f"auid must be one of {', '.join(AUIDS)}")
    try:
        xui = presentity_xui(xui)
    except ValueError as error:
        raise operations.OperationError(str(error)) from None
    results = await fetcher().refresh(xui, (auid,) if auid else AUIDS)
    return operations.Outcome({"xui": xui, "documents": results})


def install() -> None:
    """Add `xcaprefresh` to the control socket's actions and, in external mode, put the
    fetching of misses (every timer tick) and the polling on the SIP timer loop."""
    operations.ACTIONS["xcaprefresh"] = do_refresh
    if not enabled():
        return
    external = fetcher()
    runtime.every("xcap-external-misses", 0, external.fetch_wanted, owner_only=False)
    if external.poll_interval > 0:
        runtime.every("xcap-external-poll", external.poll_interval, external.poll)


class ExternalXcap:
    """The cache of one process: what is wanted, what was fetched lately, what is running."""

    def __init__(self, client: XcapClient, poll_interval: float) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self._lock = threading.Lock()  # want() comes from database threads
        self._wanted: dict[str, None] = {}  # an ordered set
        self._fresh_until: OrderedDict[str, float] = OrderedDict()
        self._running: dict[str, tuple[asyncio.Lock, int]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._down = False

    @classmethod
    def from_settings(cls) -> ExternalXcap:
        xcap = settings.XCAP
        client = XcapClient(
            xcap["EXTERNAL_ROOT"],
            user=xcap["EXTERNAL_USER"],
            password=xcap["EXTERNAL_PASSWORD"],
            timeout=xcap["EXTERNAL_TIMEOUT"],
            max_size=xcap["MAX_DOCUMENT_SIZE"],
        )
        return cls(client, xcap["EXTERNAL_POLL_INTERVAL"])

    @property
    def root(self) -> str:
        return settings.XCAP["EXTERNAL_ROOT"]

    # Asking ------------------------------------------------------------------------------

    def want(self, xui: str, now: float | None = None) -> None:
        if canonical_xui(xui) is None:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._fresh_until.get(xui, 0.0) > now:
                return
            # Asked once: the requests that miss until the answer comes add nothing.
            self._remember(xui, now + RETRY_UNREACHABLE)
            self._wanted[xui] = None

    def _remember(self, xui: str, until: float) -> None:
        self._fresh_until[xui] = until
        self._fresh_until.move_to_end(xui)
        if len(self._fresh_until) > _MAX_REMEMBERED:
            self._fresh_until.popitem(last=False)

    # Jobs on the timer loop ----------------------------------------------------------------

    async def fetch_wanted(self, now: float) -> None:
        with self._lock:
            batch, self._wanted = list(self._wanted), {}
        if batch:
            await self._refresh_each(batch)

    async def poll(self, now: float) -> None:
        await self._refresh_each(await database_sync_to_async(polled_xuis)())

    async def schedule(self, xui: str, auids: tuple[str, ...] = AUIDS) -> None:
        """Start a refresh on the running loop and return at once (for the REST endpoint).

        The task gets a context of its own: the one of the view's async_to_sync call
        names an executor that is gone once the view returns, and database_sync_to_async
        would try to use it.
        """
        loop = asyncio.get_running_loop()
        task = loop.create_task(self.refresh(xui, auids), context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh_each(self, xuis: list[str]) -> None:
        """A few at a time; once the server proves unreachable, the rest wait for next time."""
        pending, failed = iter(xuis), False

        async def worker() -> None:
            nonlocal failed
            for xui in pending:
                if failed:
                    return
                results = await self.refresh(xui)
                failed = failed or UNREACHABLE in results.values()

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))

    # Refreshing ----------------------------------------------------------------------------

    async def refresh(self, xui: str, auids: tuple[str, ...] = AUIDS) -> dict[str, str]:
        """Bring the cached copies of one presentity's documents up to date."""
        async with self._one_at_a_time(xui):
            cached = await database_sync_to_async(cached_etags)(xui, auids)
            results: dict[str, str] = {}
            for auid in auids:
                try:
                    fetched = await asyncio.to_thread(self.client.get, auid, xui, cached.get(auid))
                except XcapClientError as error:
                    if error.unreachable:
                        self._unreachable(error)
                        results.update({a: UNREACHABLE for a in auids if a not in results})
                        break
                    log_once(
                        log,
                        f"error:{auid}:{error.reason}",
                        "external XCAP server: %s of %s: %s",
                        auid,
                        xui,
                        error.reason,
                    )
                    results[auid] = ERROR
                    continue
                self._reachable()
                results[auid] = await database_sync_to_async(apply)(auid, xui, fetched)
        for auid, result in results.items():
            if result in (CREATED, CHANGED, DELETED):
                log.info("external XCAP document %s/users/%s/%s %s", auid, xui, DOCUMENT, result)
        failed = UNREACHABLE in results.values()
        fresh_for = RETRY_UNREACHABLE if failed else self.poll_interval or math.inf
        with self._lock:
            self._remember(xui, time.monotonic() + fresh_for)
        return results

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, xui: str):
        """Refreshes of one presentity take turns, so one answer is never stored twice."""
        lock, users = self._running.get(xui, (asyncio.Lock(), 0))
        self._running[xui] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._running[xui]
            if users == 1:
                del self._running[xui]
            else:
                self._running[xui] = (lock, users - 1)

    def _unreachable(self, error: XcapClientError) -> None:
        self._down = True
        log_once(
            log,
            f"unreachable:{self.root}",
            "external XCAP server %s unreachable (%s): keeping the cached documents",
            self.root,
            error.reason,
        )

    def _reachable(self) -> None:
        if self._down:
            self._down = False
            log.info("external XCAP server %s reachable again", self.root)


# Database side (run on the database thread) -------------------------------------------


def cached_etags(xui: str, auids: tuple[str, ...]) -> dict[str, str]:
    rows = XcapDocument.objects.filter(auid__in=auids, xui=xui, name=DOCUMENT, source=EXTERNAL)
    return dict(rows.values_list("auid", "etag"))


def polled_xuis() -> list[str]:
    """Presentities whose documents are cached or who have live presence watchers."""
    cached = XcapDocument.objects.filter(auid__in=AUIDS, name=DOCUMENT, source=EXTERNAL)
    watched = ActiveWatcher.objects.filter(event="presence").exclude(
        status=SubscriptionStatus.TERMINATED
    )
    xuis = {
        *cached.values_list("xui", flat=True).distinct(),
        *watched.values_list("presentity_uri", flat=True).distinct(),
    }
    return sorted(xui for xui in xuis if canonical_xui(xui) is not None)


def apply(auid: str, xui: str, fetched: Fetched) -> str:
    """Make the cached copy match the external server's answer; say what changed.

    Rows of these usages are the external server's copies now: an older local row is
    replaced or deleted like a cached one.
    """
    if fetched.status == 304:
        return UNCHANGED
    row = XcapDocument.objects.filter(auid=auid, xui=xui, name=DOCUMENT).first()
    if fetched.status == 404:
        if row is None:
            return ABSENT
        store.delete_document(row)
        return DELETED
    body = fetched.body
    try:
        xmlsafe.parse(body, max_bytes=len(body) + 1)
    except xmlsafe.XmlError as error:
        reason = error.reason
        log_once(log, f"invalid:{auid}:{xui}", "external %s of %s ignored: %s", auid, xui, reason)
        return INVALID
    etag = fetched.etag
    if not etag or len(etag) > _ETAG_FIELD:
        # No usable tag: conditional GETs will not match, comparing bodies still will.
        etag = "sha256-" + hashlib.sha256(body).hexdigest()[:40]
    if row is not None and row.source == EXTERNAL and bytes(row.body) == body:
        if row.etag != etag:
            XcapDocument.objects.filter(pk=row.pk).update(etag=etag)
        return UNCHANGED
    store.save_document(auid=auid, xui=xui, name=DOCUMENT, body=body, etag=etag, source=EXTERNAL)
    return CREATED if row is None else CHANGED
