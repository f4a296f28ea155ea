"""`manage.py sipuser add|passwd|enable|disable|delete|list`: script SIP users."""

from django.core.management.base import BaseCommand, CommandError

from ...models import SipAccount
from ...services import accounts


class Command(BaseCommand):
    help = "Create, change, enable, disable, delete and list SIP users."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="create user@domain and its Django login")
        add.add_argument("identity")
        add.add_argument("--password", required=True)
        passwd = sub.add_parser("passwd", help="set a new password")
        passwd.add_argument("identity")
        passwd.add_argument("--password", required=True)
        for name in ("enable", "disable", "delete"):
            sub.add_parser(name, help=f"{name} user@domain").add_argument("identity")
        sub.add_parser("list", help="one 'user@domain  enabled|disabled' per line")

    def handle(self, *args, action, **options):
        try:
            self._run(action, options)
        except accounts.AccountError as error:
            raise CommandError(str(error)) from None

    def _run(self, action, options):
        identity = options.get("identity")
        if action == "add":
            account = accounts.create_account(identity, options["password"])
            self.stdout.write(f"added {account}")
        elif action == "passwd":
            self.stdout.write(
                f"password changed for {accounts.change_password(identity, options['password'])}"
            )
        elif action in ("enable", "disable"):
            account = accounts.set_enabled(identity, action == "enable")
            self.stdout.write(f"{account} {action}d")
        elif action == "delete":
            accounts.delete_account(identity)
            self.stdout.write(f"deleted {identity}")
        else:
            for account in SipAccount.objects.all():
                state = "enabled" if account.enabled else "disabled"
                self.stdout.write(f"{account}  {state}")
