"""Short-lived SIP credentials: the TURN REST API scheme, as Kamailio's auth_ephemeral has it.

The username is `<expiry>:<user>@<domain>` (expiry in Unix seconds) and the password is
base64(HMAC(secret, username)). The server keeps nothing per credential: the digest check
derives the password from the username and the secret, so a username whose expiry or
identity was changed gets a different password, and one past its expiry is refused.
The domain is part of what the HMAC covers, so a password issued for alice@localhost
opens no account alice@example.com.
"""

from __future__ import annotations

import base64
import hmac
import time
from dataclasses import dataclass

from django.conf import settings

from ..core.digest import ha1
from ..models import SipAccount
from .accounts import enabled_account


@dataclass(frozen=True)
class EphemeralCredentials:
    username: str
    password: str
    expires: int


def secret() -> bytes:
    """SIP_EPHEMERAL_SECRET, or a key of its own derived from SIP_SECRET."""
    explicit = settings.SIP["EPHEMERAL_SECRET"]
    if explicit:
        return explicit.encode()
    derived = hmac.new(settings.SIP["SECRET"].encode(), b"sip ephemeral credentials", "sha256")
    return derived.hexdigest().encode()


def password_for(username: str) -> str:
    digest = hmac.new(secret(), username.encode(), settings.SIP["EPHEMERAL_HMAC"])
    return base64.b64encode(digest.digest()).decode("ascii")


def issue(account: SipAccount, now: float | None = None) -> EphemeralCredentials:
    """Credentials for `account` valid for SIP_EPHEMERAL_LIFETIME seconds from now."""
    now = time.time() if now is None else now
    expires = int(now) + settings.SIP["EPHEMERAL_LIFETIME"]
    username = f"{expires}:{account.username}@{account.domain}"
    return EphemeralCredentials(username, password_for(username), expires)


def is_ephemeral(username: str) -> bool:
    # A SIP user part has no unescaped ':' (RFC 3261 §25.1), and `sipuser` refuses one.
    return ":" in username


def lookup(
    username: str, realm: str, algorithm: str, now: float | None = None
) -> tuple[SipAccount | None, str | None]:
    """The account an ephemeral username names and the HA1 of its derived password.

    (None, None) when it is malformed, expired, for another realm, or names no enabled
    account; a forged password fails later, when the digest response is compared.
    """
    stamp, _, identity = username.partition(":")
    user, at, domain = identity.rpartition("@")
    now = time.time() if now is None else now
    if not (stamp.isdigit() and at and user) or int(stamp) <= now:
        return None, None
    if domain.lower() != realm.lower():
        return None, None
    account = enabled_account(user, realm)
    if account is None:
        return None, None
    return account, ha1(username, realm, password_for(username), algorithm)
