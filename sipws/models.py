"""SIP state in the database: accounts, registrations, publications, subscriptions."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .core.digest import ha1


class SipAccount(models.Model):
    """A SIP identity user@domain. The password is kept only as digest HA1 hashes."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sip_account",
        help_text="The Django login tied to this SIP identity.",
    )
    username = models.CharField(max_length=64)
    domain = models.CharField(max_length=253)
    ha1_md5 = models.CharField("HA1 (MD5)", max_length=32, editable=False)
    ha1_sha256 = models.CharField("HA1 (SHA-256)", max_length=64, editable=False)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["username", "domain"], name="unique_sip_identity")
        ]
        ordering = ["domain", "username"]
        verbose_name = "SIP account"

    def __str__(self) -> str:
        return f"{self.username}@{self.domain}"

    @property
    def aor(self) -> str:
        return f"sip:{self.username}@{self.domain}"

    def set_password(self, password: str) -> None:
        # The realm is the SIP domain, as SIP clients are configured (RFC 3261 §22.1).
        self.ha1_md5 = ha1(self.username, self.domain, password, "MD5")
        self.ha1_sha256 = ha1(self.username, self.domain, password, "SHA-256")

    def ha1_for(self, algorithm: str) -> str | None:
        base = algorithm.upper().removesuffix("-SESS")
        return {"MD5": self.ha1_md5, "SHA-256": self.ha1_sha256}.get(base)


class Registration(models.Model):
    """One contact binding of an address-of-record (RFC 3261 §10, RFC 5626 flows)."""

    account = models.ForeignKey(SipAccount, on_delete=models.CASCADE, related_name="registrations")
    aor = models.CharField(max_length=300, db_index=True)
    contact = models.TextField(help_text="The Contact URI as the client sent it.")
    expires = models.DateTimeField(db_index=True)
    q = models.FloatField(null=True, blank=True)
    call_id = models.CharField(max_length=255)
    cseq = models.PositiveIntegerField()
    transport = models.CharField(max_length=8)
    received = models.CharField(
        max_length=64, help_text="Source address host:port the REGISTER came from."
    )
    connection = models.CharField(
        max_length=200,
        blank=True,
        db_index=True,
        help_text="The WebSocket/TCP connection the binding lives on; empty for UDP.",
    )
    node = models.CharField(max_length=64, blank=True, db_index=True)
    instance_id = models.CharField(max_length=255, blank=True)
    reg_id = models.PositiveIntegerField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    path = models.TextField(blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["aor", "-updated"]
        indexes = [models.Index(fields=["aor", "expires"])]

    def __str__(self) -> str:
        return f"{self.aor} → {self.contact}"

    @property
    def seconds_left(self) -> int:
        return max(0, int((self.expires - timezone.now()).total_seconds()))


class Presentity(models.Model):
    """One publication (RFC 3903) of one presentity and event; several rows aggregate."""

    uri = models.CharField(max_length=300, help_text="The presentity's AOR, sip:user@domain.")
    event = models.CharField(max_length=64)
    etag = models.CharField(max_length=64)
    expires = models.DateTimeField(db_index=True)
    received_time = models.FloatField(help_text="Arrival time; newer publications win merges.")
    content_type = models.CharField(max_length=100)
    body = models.BinaryField()
    sender = models.CharField(max_length=300, blank=True, help_text="Publisher's Contact URI.")
    call_id = models.CharField(max_length=255, blank=True)
    publisher = models.CharField(max_length=300, blank=True, help_text="Authenticated user.")

    class Meta:
        # The unique index serves every lookup by presentity (uri, event, ...) as well: a
        # second index on (uri, event) only cost every INSERT and DELETE one more B-tree.
        constraints = [models.UniqueConstraint(fields=["uri", "event", "etag"], name="unique_etag")]
        # publisher: the per-user cap counts a user's publications at each initial PUBLISH.
        indexes = [models.Index(fields=["publisher"])]
        ordering = ["uri", "event", "-received_time"]
        verbose_name_plural = "presentities"

    def __str__(self) -> str:
        return f"{self.uri} {self.event} {self.etag}"


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active"
    PENDING = "pending"
    TERMINATED = "terminated"


class ActiveWatcher(models.Model):
    """One subscription dialog (RFC 6665): who, to what, and how to reach the watcher."""

    presentity_uri = models.CharField(max_length=300)
    watcher_uri = models.CharField(max_length=300)
    watcher_display = models.CharField(max_length=200, blank=True)
    event = models.CharField(max_length=64)
    event_id = models.CharField(max_length=64, blank=True)
    call_id = models.CharField(max_length=255)
    from_tag = models.CharField(max_length=128, help_text="The watcher's dialog tag.")
    to_tag = models.CharField(max_length=128, help_text="Our dialog tag.")
    remote_cseq = models.PositiveIntegerField()
    local_cseq = models.PositiveIntegerField(default=0)
    contact = models.TextField(help_text="The watcher's Contact: the remote target.")
    route_set = models.TextField(blank=True, help_text="Record-Route of the SUBSCRIBE, in order.")
    flow = models.CharField(max_length=300, help_text="Transport path NOTIFYs go back on.")
    connection = models.CharField(max_length=200, blank=True, db_index=True)
    node = models.CharField(max_length=64, blank=True, db_index=True)
    accept = models.CharField(max_length=300, blank=True)
    expires = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices)
    reason = models.CharField(max_length=32, blank=True)
    version = models.PositiveIntegerField(default=0, help_text="Body version (winfo, dialog).")
    user_agent = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["call_id", "from_tag", "to_tag"], name="unique_subscription_dialog"
            )
        ]
        # watcher_uri: the per-user cap counts a user's subscriptions at each new SUBSCRIBE.
        indexes = [
            models.Index(fields=["presentity_uri", "event"]),
            models.Index(fields=["watcher_uri"]),
        ]
        ordering = ["presentity_uri", "event", "watcher_uri"]

    def __str__(self) -> str:
        return f"{self.watcher_uri} → {self.presentity_uri} ({self.event}, {self.status})"


class Watcher(models.Model):
    """Who asked to watch whom, and the authorization decision (the presence.winfo source)."""

    presentity_uri = models.CharField(max_length=300)
    watcher_uri = models.CharField(max_length=300)
    watcher_display = models.CharField(max_length=200, blank=True)
    event = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices)
    reason = models.CharField(max_length=32, blank=True)
    inserted_time = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["presentity_uri", "watcher_uri", "event"], name="unique_watcher"
            )
        ]
        ordering = ["presentity_uri", "watcher_uri"]

    def __str__(self) -> str:
        return f"{self.watcher_uri} watches {self.presentity_uri} ({self.status})"


class OfflineMessage(models.Model):
    """A MESSAGE (RFC 3428) kept for a user who had no registration, delivered at the user's
    next REGISTER: Kamailio msilo's `silo` table."""

    account = models.ForeignKey(
        SipAccount, on_delete=models.CASCADE, related_name="offline_messages"
    )
    sender = models.CharField(max_length=300, help_text="The authenticated sender's AOR.")
    from_header = models.TextField(help_text="From as sent, without its tag.")
    to_header = models.TextField(help_text="To as sent, without a tag.")
    content_type = models.CharField(max_length=255, blank=True)
    body = models.BinaryField()
    size = models.PositiveIntegerField(help_text="Body bytes, for the per-user cap.")
    received = models.DateTimeField(default=timezone.now)
    expires = models.DateTimeField(db_index=True)
    sending_until = models.DateTimeField(
        null=True, blank=True, help_text="A delivery is under way until then."
    )

    class Meta:
        indexes = [models.Index(fields=["account", "received"])]
        ordering = ["account", "received", "id"]

    def __str__(self) -> str:
        return f"{self.sender} → {self.account} ({self.size} bytes)"


class NodeLease(models.Model):
    """A running process of a cluster (a Daphne node or a sipworker), alive while it renews
    its lease. The WebSocket flows of a node whose lease ran out are ended by the others
    (services/leases)."""

    node = models.CharField(max_length=64, primary_key=True)
    tag = models.CharField(
        max_length=16, unique=True, help_text="Names the node in Via branches and its channel."
    )
    kind = models.CharField(max_length=16, help_text="daphne, or worker (owns the SIP ports).")
    started = models.DateTimeField(default=timezone.now)
    renewed = models.DateTimeField()
    expires = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["started", "node"]

    def __str__(self) -> str:
        return f"{self.node} ({self.kind})"
