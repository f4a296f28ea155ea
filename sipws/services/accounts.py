"""Account actions shared by the `sipuser` command and Django admin."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from ..models import SipAccount
from .kept import KeptAnswers
from .rows import Table

_accounts = Table(SipAccount)


class AccountError(Exception):
    """A refused account action; the message is one line for a person to read."""


def split_identity(identity: str) -> tuple[str, str]:
    """'alice@example.com' (or 'sip:alice@example.com') → ('alice', 'example.com')."""
    text = identity.strip().removeprefix("sip:")
    username, at, domain = text.rpartition("@")
    if not at or not username or not domain or any(c in text for c in ' <>;:"/'):
        raise AccountError(f"not a SIP identity user@domain: {identity!r}")
    return username, domain.lower()


def check_domain(domain: str) -> None:
    if domain.lower() not in settings.SIP["DOMAINS"]:
        served = ", ".join(settings.SIP["DOMAINS"])
        raise AccountError(f"domain {domain!r} is not served (SIP_DOMAINS={served})")


def enabled_account(username: str, domain: str) -> SipAccount | None:
    """The enabled account user@domain (domain in lower case), or None: the lookup every
    authenticated request makes, so it skips the ORM's query building, and on SQLite
    answers from memory while the accounts cannot have changed (services/kept)."""
    return _known_accounts.get((username, domain), lambda: _lookup(username, domain))


def _lookup(username: str, domain: str) -> SipAccount | None:
    return _accounts.first('"username" = %s AND "domain" = %s AND "enabled"', [username, domain])


_known_accounts = KeptAnswers("accounts", SipAccount)


def get_account(identity: str) -> SipAccount:
    username, domain = split_identity(identity)
    try:
        return SipAccount.objects.get(username=username, domain=domain)
    except SipAccount.DoesNotExist:
        raise AccountError(f"no such SIP user: {username}@{domain}") from None


@transaction.atomic
def create_account(identity: str, password: str, *, create_login: bool = True) -> SipAccount:
    username, domain = split_identity(identity)
    check_domain(domain)
    if not password:
        raise AccountError("a password is required")
    if SipAccount.objects.filter(username=username, domain=domain).exists():
        raise AccountError(f"SIP user {username}@{domain} already exists")
    account = SipAccount(username=username, domain=domain)
    account.set_password(password)
    if create_login:
        account.user = login_for(f"{username}@{domain}", password)
    account.save()
    return account


def login_for(login: str, password: str):
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=login)
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def change_password(identity: str, password: str) -> SipAccount:
    if not password:
        raise AccountError("a password is required")
    account = get_account(identity)
    account.set_password(password)
    account.save(update_fields=["ha1_md5", "ha1_sha256"])
    if account.user is not None:
        account.user.set_password(password)
        account.user.save(update_fields=["password"])
    return account


@transaction.atomic
def set_enabled(identity: str, enabled: bool) -> SipAccount:
    account = get_account(identity)
    account.enabled = enabled
    account.save(update_fields=["enabled"])
    if not enabled:
        # A disabled user stops being reachable at once, not when bindings expire.
        account.registrations.all().delete()
    return account


@transaction.atomic
def delete_account(identity: str) -> None:
    account = get_account(identity)
    login = account.user
    account.delete()
    if login is not None:
        login.delete()
