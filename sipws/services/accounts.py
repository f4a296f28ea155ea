"""Account actions shared by the `sipuser` command and Django admin."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.signals import post_delete, post_save

from ..models import SipAccount
from .dbthread import batch_connection, current_batch
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
    answers from memory while the accounts cannot have changed (`_KnownAccounts`)."""
    db = batch_connection() or connections[DEFAULT_DB_ALIAS]
    known = _KnownAccounts.of(db)
    if known is None:
        return _lookup(username, domain)
    key = (username, domain)
    if key in known.answers:
        return known.answers[key]
    account = _lookup(username, domain)
    known.keep(key, account)
    return account


def _lookup(username: str, domain: str) -> SipAccount | None:
    return _accounts.first('"username" = %s AND "domain" = %s AND "enabled"', [username, domain])


class _KnownAccounts:
    """`enabled_account`'s answers on one SQLite connection, kept while they are current.

    SQLite's `PRAGMA data_version` changes when any other connection commits: another
    thread's (admin, REST API), or another process's (`manage.py sipuser`). This
    connection's own writes go through `Model.save()` and `delete()`, whose signals
    forget every answer; after such a write inside a transaction nothing is kept until it
    ends, as it may yet roll back. The check is one statement against the indexed lookup
    and model building it replaces, and one per engine batch (dbthread): while a batch is
    open this process holds the write lock, so no connection can commit. PostgreSQL (a
    cluster) reads every time: a change on another node would go unseen.
    """

    LIMIT = 10_000  # answers kept per connection; all are forgotten when it is reached
    generation = 0  # bumped by this process's writes to SipAccount

    def __init__(self, raw, version: int) -> None:
        self.raw, self.version = raw, version
        self.generation = _KnownAccounts.generation
        self.answers: dict[tuple[str, str], SipAccount | None] = {}
        self.checked_in = None  # the batch whose write lock made the version current

    @classmethod
    def of(cls, db) -> "_KnownAccounts | None":
        """The current answers of `db`'s connection, or None where none may be kept."""
        raw = db.connection
        if db.vendor != "sqlite" or raw is None:
            return None
        if db.in_atomic_block and _wrote_accounts_in(db) is db.atomic_blocks[0]:
            return None
        known = getattr(db, "_sipws_known_accounts", None)
        if known is not None and (known.raw is not raw or known.generation != cls.generation):
            known = None
        batch = current_batch()
        if known is not None and batch is not None and known.checked_in is batch:
            return known
        with db.wrap_database_errors:
            version = raw.execute("PRAGMA data_version").fetchone()[0]
        if known is None or known.version != version:
            known = db._sipws_known_accounts = cls(raw, version)
        known.checked_in = batch
        return known

    def keep(self, key: tuple[str, str], account: SipAccount | None) -> None:
        if len(self.answers) >= self.LIMIT:
            self.answers.clear()
        self.answers[key] = account


def _forget_accounts(using=DEFAULT_DB_ALIAS, **_) -> None:
    _KnownAccounts.generation += 1
    db = connections[using]
    if db.in_atomic_block:  # the outermost block: its transaction may yet roll back
        db._sipws_wrote_accounts_in = db.atomic_blocks[0]


def _wrote_accounts_in(db):
    """The outermost atomic block of the last transaction that wrote accounts here."""
    return getattr(db, "_sipws_wrote_accounts_in", None)


post_save.connect(_forget_accounts, sender=SipAccount, dispatch_uid="sipws-known-accounts")
post_delete.connect(_forget_accounts, sender=SipAccount, dispatch_uid="sipws-known-accounts")


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
