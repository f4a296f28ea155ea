"""The JSON form of a message summary, validated strictly.

A voicemail system that sends `"2"` for a count or `"yes"` for a flag, a field this API
does not know, or urgent counts larger than the counts they are part of, has a bug: it
gets a 400 naming the field rather than a guess. Counts run from 0 to `MWI_MAX_COUNT`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict

from django.conf import settings
from rest_framework import serializers

from .package import CLASSES, Counts, MessageSummary, is_account_uri

MAX_COUNT = settings.MWI["MAX_COUNT"]


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare, instead of dropping them silently."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, Mapping) else []
        errors = {name: ["Unknown field."] for name in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as invalid:
            if errors and isinstance(invalid.detail, Mapping):
                raise serializers.ValidationError({**invalid.detail, **errors}) from None
            raise
        if errors:
            raise serializers.ValidationError(errors)
        return value


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: no strings, floats or booleans."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false: no strings or numbers."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def _count(help_text: str, **kwargs) -> StrictIntegerField:
    return StrictIntegerField(min_value=0, max_value=MAX_COUNT, help_text=help_text, **kwargs)


class CountsSerializer(StrictSerializer):
    """The messages of one context class (RFC 3842 `new/old (urgent_new/urgent_old)`)."""

    new = _count("New (unheard) messages.")
    old = _count("Old (heard) messages.")
    urgent_new = _count("How many of the new messages are urgent.", required=False, default=0)
    urgent_old = _count("How many of the old messages are urgent.", required=False, default=0)

    def validate(self, attrs):
        errors = {}
        for urgent, total in (("urgent_new", "new"), ("urgent_old", "old")):
            if attrs[urgent] > attrs[total]:
                errors[urgent] = [f"Must not exceed {total} ({attrs[total]})."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _class_field(line_name: str) -> CountsSerializer:
    return CountsSerializer(
        required=False,
        allow_null=True,
        help_text=f"The `{line_name}` line; absent or null: no such line.",
    )


class MessageSummarySerializer(StrictSerializer):
    """A mailbox's message-waiting state (RFC 3842 application/simple-message-summary)."""

    messages_waiting = StrictBooleanField(
        help_text="Messages-Waiting: whether the phone's message lamp is on."
    )
    account = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=1024,
        trim_whitespace=False,
        help_text="Message-Account: the URI to call for the mailbox, e.g. sip:*97@example.com.",
    )
    voice = _class_field(CLASSES["voice"])
    fax = _class_field(CLASSES["fax"])
    pager = _class_field(CLASSES["pager"])
    multimedia = _class_field(CLASSES["multimedia"])
    text = _class_field(CLASSES["text"])
    none = _class_field(CLASSES["none"])

    def validate_account(self, value: str | None) -> str | None:
        if value is not None and not is_account_uri(value):
            raise serializers.ValidationError("Not an absolute URI (sip:, sips:, tel:, ...).")
        return value

    def to_representation(self, summary: MessageSummary) -> dict:
        out: dict = {"messages_waiting": summary.messages_waiting, "account": summary.account}
        for short in CLASSES:
            counts = summary.counts.get(short)
            out[short] = asdict(counts) if counts is not None else None
        return out


def summary_from(validated: dict) -> MessageSummary:
    """The MessageSummary a validated MessageSummarySerializer describes."""
    counts = {short: Counts(**validated[short]) for short in CLASSES if validated.get(short)}
    return MessageSummary(validated["messages_waiting"], validated.get("account"), counts)
