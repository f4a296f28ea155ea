"""`manage.py xcaprefresh sip:alice@example.com [--auid pres-rules]`: fetch again now the
documents of a presentity kept on the external XCAP server (Kamailio's refreshXcapDoc).

The running server does the refresh, since its NOTIFYs go over SIP flows only it holds:
this command asks it over its control socket (as `manage.py presence` does) and prints
what changed once the external server has answered.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sipws.transports import control
from xcapapi import external


class Command(BaseCommand):
    help = "Have the running server fetch a presentity's documents from the external XCAP server."

    def add_arguments(self, parser):
        parser.add_argument("xui", help="the presentity, e.g. sip:alice@example.com")
        parser.add_argument("--auid", choices=external.AUIDS, help="one document (default: all)")
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args, xui, auid, timeout, **options):
        path = settings.SIP["CONTROL_SOCKET"]
        arguments = {"xui": xui, **({"auid": auid} if auid else {})}
        try:
            reply = control.call(path, {"action": "xcaprefresh", "arguments": arguments}, timeout)
        except OSError as error:
            raise CommandError(f"no server answers on {path or '(none)'}: {error}") from None
        if not reply.get("ok"):
            raise CommandError(reply.get("error", "the server refused"))
        result = reply["result"]
        documents = ", ".join(f"{auid} {done}" for auid, done in result["documents"].items())
        self.stdout.write(f"{result['xui']}: {documents}\n")
