"""JSON shapes of the operations API; `manage.py presence --json` prints the same."""

from __future__ import annotations

from datetime import UTC, datetime

from rest_framework import serializers

from ..core.flow import Flow
from ..models import ActiveWatcher, Presentity, SubscriptionStatus, Watcher

STATUSES = [choice.value for choice in SubscriptionStatus]


class EpochDateTimeField(serializers.DateTimeField):
    """A time kept as Unix seconds (Presentity.received_time), shown as ISO 8601."""

    def to_representation(self, value):
        return super().to_representation(datetime.fromtimestamp(value, UTC))


class PresentitySummarySerializer(serializers.Serializer):
    uri = serializers.CharField()
    event = serializers.CharField()
    publications = serializers.IntegerField(help_text="Stored publications (one per ETag).")
    expires = serializers.DateTimeField(help_text="When the last of them expires.")
    updated = EpochDateTimeField(help_text="When the newest of them arrived.")


class PublicationSerializer(serializers.ModelSerializer):
    received = EpochDateTimeField(source="received_time")
    body = serializers.SerializerMethodField()

    class Meta:
        model = Presentity
        fields = ["etag", "expires", "received", "content_type", "publisher", "sender", "body"]

    def get_body(self, publication) -> str:
        return bytes(publication.body).decode("utf-8", "replace")


class PresentityDetailSerializer(serializers.Serializer):
    uri = serializers.CharField()
    event = serializers.CharField()
    content_type = serializers.CharField(help_text="The media type of `state`.")
    state = serializers.CharField(
        allow_null=True,
        help_text="The aggregated state watchers are sent (before their pres-rules views); "
        "null when the package sends no body.",
    )
    subscriptions = serializers.IntegerField(help_text="Live (active or pending) subscriptions.")
    publications = PublicationSerializer(many=True)


class SubscriptionSerializer(serializers.ModelSerializer):
    presentity = serializers.CharField(source="presentity_uri")
    watcher = serializers.CharField(source="watcher_uri")
    transport = serializers.SerializerMethodField()

    class Meta:
        model = ActiveWatcher
        fields = [
            "id",
            "presentity",
            "watcher",
            "watcher_display",
            "event",
            "event_id",
            "status",
            "reason",
            "expires",
            "transport",
            "contact",
            "call_id",
            "from_tag",
            "to_tag",
            "local_cseq",
            "remote_cseq",
            "version",
            "user_agent",
            "created",
        ]

    def get_transport(self, subscription) -> str:
        return Flow.deserialize(subscription.flow).transport


class WatcherSerializer(serializers.ModelSerializer):
    presentity = serializers.CharField(source="presentity_uri")
    watcher = serializers.CharField(source="watcher_uri")

    class Meta:
        model = Watcher
        fields = [
            "id",
            "presentity",
            "watcher",
            "watcher_display",
            "event",
            "status",
            "reason",
            "inserted_time",
        ]


# Query parameters and request bodies.

URI_HELP = "sip:user@domain, user@domain, or a pattern with * (*@example.com)"


class PresentityFilter(serializers.Serializer):
    uri = serializers.CharField(required=False, help_text=URI_HELP)
    event = serializers.CharField(required=False)


class SubscriptionFilter(serializers.Serializer):
    presentity = serializers.CharField(required=False, help_text=URI_HELP)
    watcher = serializers.CharField(required=False, help_text=URI_HELP)
    event = serializers.CharField(required=False)
    status = serializers.ChoiceField(choices=STATUSES, required=False)


class EventSerializer(serializers.Serializer):
    event = serializers.CharField(default="presence", help_text="The event package.")


# Answers of the actions.


class TerminateResultSerializer(serializers.Serializer):
    terminated = serializers.IntegerField(help_text="The id of the subscription ended.")
    notified = serializers.IntegerField(help_text="NOTIFYs sent (the watcher, winfo).")


class RefreshResultSerializer(serializers.Serializer):
    presentity = serializers.CharField()
    event = serializers.CharField()
    notified = serializers.IntegerField(help_text="NOTIFYs sent.")


class ChangeSerializer(serializers.Serializer):
    watcher = serializers.CharField()
    before = serializers.CharField()
    after = serializers.CharField()


class ReevaluateResultSerializer(RefreshResultSerializer):
    changes = ChangeSerializer(many=True, help_text="Subscriptions whose status changed.")


class CleanupResultSerializer(serializers.Serializer):
    publications = serializers.IntegerField(help_text="Expired publications removed.")
    subscriptions = serializers.IntegerField(help_text="Expired subscriptions ended.")
    registrations = serializers.IntegerField(help_text="Expired registrations removed.")
    notified = serializers.IntegerField(help_text="NOTIFYs sent.")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
