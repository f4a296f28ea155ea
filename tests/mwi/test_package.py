"""The message-summary package (RFC 3842 §5.2): bodies accepted and refused, render and
parse, the neutral state and the owner-only subscription policy."""

import pytest

from mwi.package import (
    CONTENT_TYPE,
    MAX_COUNT,
    NEUTRAL,
    Counts,
    MessageSummary,
    MessageSummaryPackage,
    owner_only,
    parse,
    render,
)
from sipws.event_packages import base as packages
from sipws.event_packages.base import BadBody
from sipws.services import policy

PACKAGE = MessageSummaryPackage()


def crlf(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


# The shapes of RFC 3842's examples: status only, status + account + summary,
# and the optional headers describing single messages after a blank line.
RFC_STATUS_ONLY = crlf("Messages-Waiting: no")
RFC_SUMMARY = crlf(
    "Messages-Waiting: yes",
    "Message-Account: sip:alice@vmail.example.com",
    "Voice-Message: 2/8 (0/2)",
)
RFC_WITH_MESSAGE_HEADERS = crlf(
    "Messages-Waiting: yes",
    "Message-Account: sip:alice@vmail.example.com",
    "Voice-Message: 4/8 (1/2)",
    "",
    "To: <alice@atlanta.example.com>",
    "From: <bob@biloxi.example.com>",
    "Subject: carpool tomorrow?",
    "Date: Sun, 09 May 2004 16:38:19 -0700",
    "Priority: normal",
    "Message-ID: 13784434989@vmail.example.com",
    "",
    "To: <alice@atlanta.example.com>",
    "Subject: Upcoming tradeshow",
)


def test_rfc_example_bodies_are_accepted():
    for body in (RFC_STATUS_ONLY, RFC_SUMMARY, RFC_WITH_MESSAGE_HEADERS):
        PACKAGE.validate(body, CONTENT_TYPE)
    assert parse(RFC_SUMMARY) == MessageSummary(
        True, "sip:alice@vmail.example.com", {"voice": Counts(2, 8, 0, 2)}
    )
    summary = parse(RFC_WITH_MESSAGE_HEADERS)
    assert summary.counts == {"voice": Counts(4, 8, 1, 2)}
    assert [len(block) for block in summary.message_headers] == [6, 2]
    assert summary.message_headers[0][2] == ("Subject", "carpool tomorrow?")


def test_every_context_class_without_and_with_urgent_counts():
    body = crlf(
        "Messages-Waiting: yes",
        "Voice-Message: 1/2",
        "Fax-Message: 3/4 (1/0)",
        "Pager-Message: 0/0",
        "Multimedia-Message: 5/6 (0/6)",
        "Text-Message: 7/8",
        "None: 9/10 (9/10)",
    )
    assert parse(body).counts == {
        "voice": Counts(1, 2),
        "fax": Counts(3, 4, 1, 0),
        "pager": Counts(0, 0),
        "multimedia": Counts(5, 6, 0, 6),
        "text": Counts(7, 8),
        "none": Counts(9, 10, 9, 10),
    }


@pytest.mark.parametrize(
    "body",
    [
        # ABNF strings are case-insensitive (RFC 5234 §2.3).
        crlf("messages-waiting: YES", "VOICE-MESSAGE: 1/0", "text-message: 2/1"),
        # HCOLON, SLASH, LPAREN and RPAREN allow white space around them.
        crlf("Messages-Waiting :\tyes", "Voice-Message : 2 / 8 ( 0 / 2 ) "),
        # A folded line (LWS) is one line.
        crlf("Messages-Waiting: yes", "Voice-Message:", " 2/8"),
        # Account-URI = SIP-URI / SIPS-URI / absoluteURI.
        crlf("Messages-Waiting: yes", "Message-Account: sips:*97@example.com"),
        crlf("Messages-Waiting: yes", "Message-Account: tel:+15551234567"),
        crlf("Messages-Waiting: no", "Message-Account: mailto:alice@example.com"),
        crlf("Messages-Waiting: yes", f"Voice-Message: {MAX_COUNT}/{MAX_COUNT}"),
        crlf("Messages-Waiting: yes", "Voice-Message: 0001/0"),
        # Message headers may carry UTF-8 text.
        crlf("Messages-Waiting: yes", "Voice-Message: 1/0", "", "Subject: Grüße"),
    ],
)
def test_accepted(body):
    PACKAGE.validate(body, CONTENT_TYPE)
    PACKAGE.validate(body, "Application/Simple-Message-Summary; charset=utf-8")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "CRLF"),
        (b"Messages-Waiting: yes", "CRLF"),
        (b"Messages-Waiting: yes\n", "CRLF"),
        (b"Messages-Waiting: yes\nVoice-Message: 1/0\r\n", "CRLF"),
        (b"Messages-Waiting: yes\rVoice-Message: 1/0\r\n", "CRLF"),
        (crlf(""), "first line"),
        (crlf("Voice-Message: 1/0", "Messages-Waiting: yes"), "first line"),
        (crlf("Messages-Waiting: maybe"), "first line"),
        (crlf("Messages-Waiting: yes please"), "first line"),
        (crlf("Messages-Waiting yes"), "first line"),
        (crlf(" Messages-Waiting: yes"), "first line"),
        (crlf("Messages-Waiting: yes", "Message-Account: not a uri"), "Message-Account"),
        (crlf("Messages-Waiting: yes", "Message-Account:"), "Message-Account"),
        (crlf("Messages-Waiting: yes", "Message-Account: sip:"), "Message-Account"),
        (crlf("Messages-Waiting: yes", "Message-Account: <sip:a@b>"), "Message-Account"),
        (
            crlf("Messages-Waiting: yes", "Voice-Message: 1/0", "Message-Account: sip:a@b"),
            "directly follow",
        ),
        (crlf("Messages-Waiting: yes", "Voicemail-Message: 1/0"), "unknown message-context"),
        (crlf("Messages-Waiting: yes", "Voice: 1/0"), "unknown message-context"),
        (crlf("Messages-Waiting: yes", "garbage"), "not a message-context line"),
        (crlf("Messages-Waiting: yes", "Voice-Message: 1"), "new/old"),
        (crlf("Messages-Waiting: yes", "Voice-Message: 1/"), "new/old"),
        (crlf("Messages-Waiting: yes", "Voice-Message: -1/0"), "new/old"),
        (crlf("Messages-Waiting: yes", "Voice-Message: 1.5/0"), "new/old"),
        (crlf("Messages-Waiting: yes", "Voice-Message: 1/0 (1)"), "new/old"),
        (crlf("Messages-Waiting: yes", "Voice-Message: 1/0 (1/0"), "new/old"),
        (crlf("Messages-Waiting: yes", "Voice-Message: 1/0 x"), "new/old"),
        (crlf("Messages-Waiting: yes", "Voice-Message: ١/0"), "new/old"),  # Arabic-Indic 1
        (crlf("Messages-Waiting: yes", f"Voice-Message: {MAX_COUNT + 1}/0"), "exceeds"),
        (crlf("Messages-Waiting: yes", "Voice-Message: 0/0 (0/" + "9" * 5000 + ")"), "exceeds"),
        (crlf("Messages-Waiting: yes", "Voice-Message: 1/0", "voice-message: 2/0"), "twice"),
        (crlf("Messages-Waiting: yes", ""), "followed by message headers"),
        (crlf("Messages-Waiting: yes", "", "To: a", "", ""), "followed by message headers"),
        (crlf("Messages-Waiting: yes", "", "not a header"), "not a header"),
        (crlf("Messages-Waiting: yes", "", "Subject: a\x07bell"), "not a header"),
        ("Messages-Waiting: yes\r\nSubject: \xff\r\n".encode("latin-1"), "UTF-8"),
    ],
)
def test_refused_with_400_and_a_reason(body, reason):
    with pytest.raises(BadBody) as refused:
        PACKAGE.validate(body, CONTENT_TYPE)
    assert refused.value.status == 400
    assert reason in refused.value.reason


@pytest.mark.parametrize("content_type", ["text/plain", "application/pidf+xml", ""])
def test_other_content_types_get_415(content_type):
    with pytest.raises(BadBody) as refused:
        PACKAGE.validate(RFC_SUMMARY, content_type)
    assert refused.value.status == 415


def test_render_parse_round_trip():
    summaries = [
        MessageSummary(False),
        MessageSummary(True, "sip:*97@example.com", {"voice": Counts(2, 8, 0, 1)}),
        MessageSummary(
            True,
            None,
            {"fax": Counts(1, 0), "none": Counts(0, 3, 0, 3), "text": Counts(5, 5, 5, 0)},
            ((("From", "<bob@example.com>"), ("Subject", "hi")),),
        ),
    ]
    for summary in summaries:
        assert parse(render(summary)) == summary
    for body in (RFC_STATUS_ONLY, RFC_SUMMARY, RFC_WITH_MESSAGE_HEADERS):
        assert render(parse(body)) == body


def test_render_writes_the_rfc_form_in_class_order():
    summary = MessageSummary(
        True,
        "sip:*97@example.com",
        {"text": Counts(1, 0), "voice": Counts(2, 8, 0, 1), "fax": Counts(0, 0, 0, 0)},
    )
    assert render(summary) == crlf(
        "Messages-Waiting: yes",
        "Message-Account: sip:*97@example.com",
        "Voice-Message: 2/8 (0/1)",
        "Fax-Message: 0/0",
        "Text-Message: 1/0",
    )


def test_neutral_state_is_a_body_saying_no_messages():
    assert PACKAGE.neutral_body("sip:alice@localhost") == NEUTRAL
    assert parse(NEUTRAL) == MessageSummary(False)


def test_the_newest_publication_wins():
    older = packages.Publication(RFC_SUMMARY, CONTENT_TYPE, "a", 1.0)
    newer = packages.Publication(RFC_STATUS_ONLY, CONTENT_TYPE, "b", 2.0)
    assert PACKAGE.aggregate("sip:alice@localhost", [newer, older]) == RFC_STATUS_ONLY


def test_registered_with_its_policy():
    assert isinstance(packages.get("message-summary"), MessageSummaryPackage)
    assert policy.decide("message-summary", "sip:a@x", "sip:a@x") == policy.ALLOW
    refused = policy.decide("message-summary", "sip:b@x", "sip:a@x")
    assert refused.status == policy.FORBIDDEN.status
    assert owner_only("sip:b@x", "sip:a@x").reason == "only the mailbox owner may subscribe"
