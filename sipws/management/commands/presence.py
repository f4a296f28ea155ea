"""`manage.py presence list|show|subscriptions|watchers|terminate|refresh|reevaluate|cleanup`.

Kamailio's presence RPC commands from the shell. Queries read the database. Actions are
sent to the running server over its control socket, since only the process that owns
the watchers' connections can NOTIFY them; with no server answering there, an action
runs here: when REDIS_URL is set its NOTIFYs go out through the channel layer as any
node's do, otherwise the database is changed and the watchers are not told (a warning
says so). `--json` prints what the REST API under /api/admin/ answers.
"""

import asyncio
import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ... import runtime
from ...api import serializers as s
from ...services import notify, operations
from ...transports import control


class Command(BaseCommand):
    help = "Inspect presence state and act on it (Kamailio's presence RPC commands)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print JSON, as the REST API")
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="presentities with publications")
        listing.add_argument("--uri", help="sip:user@domain, or a pattern with *")
        listing.add_argument("--event")
        show = sub.add_parser("show", help="one presentity's publications and state")
        show.add_argument("uri")
        show.add_argument("--event", default="presence")
        for name, text in (("subscriptions", "subscription dialogs"), ("watchers", "watchers")):
            query = sub.add_parser(name, help=f"{text}, filtered")
            query.add_argument("--presentity", help="sip:user@domain, or a pattern with *")
            query.add_argument("--watcher", help="sip:user@domain, or a pattern with *")
            query.add_argument("--event")
            query.add_argument("--status", choices=s.STATUSES)
        terminate = sub.add_parser("terminate", help="end a subscription (reason=deactivated)")
        terminate.add_argument("id", type=int, help="the subscription's id")
        for name, text in (
            ("refresh", "NOTIFY every watcher of a presentity with its current state"),
            ("reevaluate", "decide the watchers of a presentity again from its rules"),
        ):
            act = sub.add_parser(name, help=text)
            act.add_argument("uri")
            act.add_argument("--event", default="presence")
        sub.add_parser("cleanup", help="expire what is due now")

    def handle(self, *args, action, **options):
        self.as_json = options["json"]
        try:
            if action in operations.ACTIONS:
                self._act(action, options)
            else:
                getattr(self, f"_{action}")(options)
        except operations.OperationError as error:
            raise CommandError(str(error)) from None

    # Queries

    def _list(self, options):
        rows = operations.presentity_list(options["uri"], options["event"])
        if self._json(s.PresentitySummarySerializer(rows, many=True).data):
            return
        for row in rows:
            self.stdout.write(
                f"{row['uri']}  {row['event']}  {row['publications']} publication(s)"
                f"  expires {row['expires']:%Y-%m-%d %H:%M:%S}"
            )

    def _show(self, options):
        detail = operations.presentity_detail(options["uri"], options["event"])
        if self._json(s.PresentityDetailSerializer(detail).data):
            return
        self.stdout.write(f"{detail['uri']}  {detail['event']}")
        self.stdout.write(f"subscriptions: {detail['subscriptions']}")
        for row in detail["publications"]:
            self.stdout.write(
                f"publication {row.etag}  expires {row.expires:%Y-%m-%d %H:%M:%S}"
                f"  from {row.publisher or '-'}  {row.sender}"
            )
        state = detail["state"]
        self.stdout.write(f"state ({detail['content_type']}):" if state else "state: none")
        if state:
            self.stdout.write(state)

    def _subscriptions(self, options):
        rows = operations.subscription_list(*self._filters(options))
        if self._json(s.SubscriptionSerializer(rows, many=True).data):
            return
        for row in s.SubscriptionSerializer(rows, many=True).data:
            self.stdout.write(
                f"{row['id']}  {row['watcher']} -> {row['presentity']}  {row['event']}"
                f"  {row['status']}  {row['transport']}  expires {row['expires']}"
            )

    def _watchers(self, options):
        rows = operations.watcher_list(*self._filters(options))
        if self._json(s.WatcherSerializer(rows, many=True).data):
            return
        for row in rows:
            reason = f" ({row.reason})" if row.reason else ""
            self.stdout.write(
                f"{row.watcher_uri} -> {row.presentity_uri}  {row.event}  {row.status}{reason}"
            )

    @staticmethod
    def _filters(options):
        return options["presentity"], options["watcher"], options["event"], options["status"]

    # Actions

    def _act(self, action, options):
        arguments = {
            "terminate": lambda: {"subscription_id": options["id"]},
            "refresh": lambda: {"presentity": options["uri"], "event": options["event"]},
            "reevaluate": lambda: {"presentity": options["uri"], "event": options["event"]},
            "cleanup": dict,
        }[action]()
        result = self._on_server(action, arguments)
        if result is None:
            result = self._here(action, arguments)
        if self._json(result):
            return
        self.stdout.write(_describe(action, result))

    def _on_server(self, action, arguments) -> dict | None:
        path = settings.SIP["CONTROL_SOCKET"]
        if not path:
            return None
        try:
            reply = control.call(path, {"action": action, "arguments": arguments})
        except OSError:
            return None  # no server running here
        if not reply.get("ok"):
            raise CommandError(reply.get("error", "the server refused"))
        return reply["result"]

    def _here(self, action, arguments) -> dict:
        server = runtime.get_server()
        outcome = operations.ACTIONS[action](server, **arguments)
        if settings.REDIS_URL:
            asyncio.run(notify.send(server, outcome.outgoing))
        elif outcome.outgoing:
            self.stderr.write(
                f"warning: no server answered on {settings.SIP['CONTROL_SOCKET'] or '(none)'}: "
                f"{len(outcome.outgoing)} NOTIFY(s) not sent"
            )
            outcome.summary["notified"] = 0
        return outcome.summary

    def _json(self, data) -> bool:
        if self.as_json:
            self.stdout.write(json.dumps(data, indent=2))
        return self.as_json


def _describe(action: str, result: dict) -> str:
    sent = f"{result['notified']} NOTIFY(s) sent"
    if action == "terminate":
        return f"terminated subscription {result['terminated']}, {sent}"
    if action == "cleanup":
        return (
            f"removed {result['publications']} publication(s), {result['subscriptions']} "
            f"subscription(s), {result['registrations']} registration(s); {sent}"
        )
    line = f"{action} {result['presentity']} {result['event']}: {sent}"
    for change in result.get("changes", ()):
        line += f"\n  {change['watcher']}: {change['before']} -> {change['after']}"
    return line
