"""The MWI REST API a voicemail system calls: GET, PUT and DELETE /api/mwi/{user@domain}/.

Token authentication first (a missing or wrong token is 401 with `WWW-Authenticate:
Token`), then the Django session of a staff user (CSRF-checked on writes). Every write
notifies the mailbox's subscribers before the answer goes out.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from . import mailbox as mailboxes
from .permissions import CanPushMwi
from .serializers import MessageSummarySerializer, summary_from

_ERROR = inline_serializer("MwiError", {"detail": serializers.CharField()})
_MAILBOX = OpenApiParameter(
    "mailbox",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The mailbox owner's SIP identity, user@domain (an existing SIP account).",
    examples=[OpenApiExample("alice", value="alice@example.com")],
)
_EXAMPLE = OpenApiExample(
    "two new voice messages",
    value={
        "messages_waiting": True,
        "account": "sip:*97@example.com",
        "voice": {"new": 2, "old": 8, "urgent_new": 0, "urgent_old": 1},
    },
)
_COMMON = {
    401: OpenApiResponse(_ERROR, "No token or a wrong one (WWW-Authenticate: Token)."),
    403: OpenApiResponse(_ERROR, "Neither staff nor holding mwi.push_mwi; or a bad CSRF token."),
    404: OpenApiResponse(_ERROR, "No SIP account has this address."),
}


@extend_schema_view(
    get=extend_schema(
        summary="Read a mailbox's message-waiting state",
        description=(
            "What the mailbox's subscribers get now: the newest of the REST and SIP PUBLISH "
            "writes. A mailbox nobody set reads as `messages_waiting: false`."
        ),
        parameters=[_MAILBOX],
        responses={200: MessageSummarySerializer, **_COMMON},
    ),
    put=extend_schema(
        summary="Set a mailbox's message-waiting state",
        description=(
            "Replaces the state set by earlier REST calls and becomes the newest state; "
            "the mailbox's subscribers get a NOTIFY with the new message-summary. Answers "
            "the state as stored. Unknown fields, wrong types and counts out of range are "
            "refused with 400 and change nothing."
        ),
        parameters=[_MAILBOX],
        request=MessageSummarySerializer,
        examples=[_EXAMPLE],
        responses={
            200: MessageSummarySerializer,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                "Malformed JSON (`detail`) or invalid fields (field name: list of messages).",
            ),
            **_COMMON,
        },
    ),
    delete=extend_schema(
        summary="Clear a mailbox's message-waiting state",
        description=(
            "Removes every message-summary state of the mailbox, REST and SIP PUBLISH "
            "alike; subscribers get `Messages-Waiting: no`."
        ),
        parameters=[_MAILBOX],
        responses={204: OpenApiResponse(description="Cleared."), **_COMMON},
    ),
)
class MailboxView(APIView):
    authentication_classes = (TokenAuthentication, SessionAuthentication)
    permission_classes = (CanPushMwi,)
    parser_classes = (JSONParser,)
    renderer_classes = (JSONRenderer,)
    serializer_class = MessageSummarySerializer

    def get(self, request, mailbox: str) -> Response:
        state = mailboxes.read(_aor(mailbox))
        return Response(MessageSummarySerializer(state).data)

    def put(self, request, mailbox: str) -> Response:
        aor = _aor(mailbox)
        incoming = MessageSummarySerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        stored = mailboxes.do_set(aor, summary_from(incoming.validated_data))
        return Response(MessageSummarySerializer(stored).data)

    def delete(self, request, mailbox: str) -> Response:
        mailboxes.do_clear(_aor(mailbox))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _aor(identity: str) -> str:
    try:
        return mailboxes.find(identity)
    except mailboxes.NoMailbox:
        raise exceptions.NotFound(f"No SIP account {identity}.") from None
