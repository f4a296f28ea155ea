"""POST /api/sip-credentials/: short-lived SIP credentials for the logged-in user's web page.

The browser page signs in with its Django session and gets a digest username and password
that the SIP side accepts for that user only, until they expire (see services/ephemeral).
Nothing of the account's own secrets (its HA1 hashes) leaves the server.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import SipAccount
from .services import ephemeral

_CREDENTIALS = inline_serializer(
    "SipCredentials",
    {
        "username": serializers.CharField(help_text="`<expiry>:<user>@<domain>`"),
        "password": serializers.CharField(help_text="base64(HMAC(secret, username))"),
        "expires": serializers.IntegerField(help_text="Unix time the credentials end."),
        "ttl": serializers.IntegerField(help_text="Seconds from now until they end."),
        "uri": serializers.CharField(help_text="The user's SIP address, sip:user@domain."),
        "realm": serializers.CharField(help_text="The digest realm: the SIP domain."),
        "ws_url": serializers.CharField(help_text="Where to connect SIP over WebSocket."),
    },
)
_ERROR = inline_serializer("SipCredentialsError", {"detail": serializers.CharField()})


class SipCredentialsView(APIView):
    authentication_classes = [SessionAuthentication]  # CSRF-checked, as every session POST
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        tags=["web client"],
        summary="Issue short-lived SIP credentials",
        request=None,
        responses={
            200: _CREDENTIALS,
            403: OpenApiResponse(_ERROR, "Not logged in, a bad CSRF token, or disabled."),
            404: OpenApiResponse(_ERROR, "This login has no SIP account."),
        },
    )
    def post(self, request):
        """Digest credentials for the session's SIP account, for SIP_EPHEMERAL_LIFETIME seconds."""
        account = SipAccount.objects.filter(user=request.user).first()
        if account is None:
            raise exceptions.NotFound("This login has no SIP account.")
        if not account.enabled:
            raise exceptions.PermissionDenied("This SIP account is disabled.")
        issued = ephemeral.issue(account)
        body = {
            "username": issued.username,
            "password": issued.password,
            "expires": issued.expires,
            "ttl": settings.SIP["EPHEMERAL_LIFETIME"],
            "uri": account.aor,
            "realm": account.domain,
            "ws_url": settings.SIP["WS_URL"] or _ws_url(request),
        }
        return Response(body, headers={"Cache-Control": "no-store"})


def _ws_url(request) -> str:
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}/ws"


urlpatterns = [path("", SipCredentialsView.as_view(), name="sip-credentials")]
