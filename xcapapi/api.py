"""On-demand refresh of documents kept on an external XCAP server (Kamailio's refreshXcapDoc).

`POST /api/xcap/refresh/` with `{"xui": "sip:alice@example.com", "auid": "pres-rules"}`
(`auid` optional: then pres-rules, the OMA pres-rules and pidf-manipulation) makes this
server fetch those documents again; the external server's operator calls it when a
document changed there. Staff only, authenticated as the other REST APIs are: a token
first, then the Django session.

The answer is 202: the fetch runs on the event loop, like every external fetch, because a
Django view runs on the database thread the SIP requests share, and must not wait there
for another server. What changed is logged, and watchers hear of it at once.
`manage.py xcaprefresh` goes through the control socket instead and waits for the answer.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from . import external

log = logging.getLogger("xcapapi.api")


class RefreshRequest(serializers.Serializer):
    xui = serializers.CharField(max_length=300)
    auid = serializers.ChoiceField(choices=external.AUIDS, required=False)

    def validate_xui(self, value: str) -> str:
        try:
            return external.presentity_xui(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class RefreshScheduled(serializers.Serializer):
    xui = serializers.CharField()
    auids = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField(help_text="always `scheduled`")


class Detail(serializers.Serializer):
    detail = serializers.CharField()


class RefreshView(APIView):
    # Token first: an anonymous request gets 401 with `WWW-Authenticate: Token`.
    authentication_classes = (TokenAuthentication, SessionAuthentication)
    permission_classes = (IsAdminUser,)
    serializer_class = RefreshRequest
    parser_classes = (JSONParser,)
    renderer_classes = (JSONRenderer,)

    @extend_schema(
        tags=["xcap"],
        summary="Refresh documents kept on the external XCAP server",
        request=RefreshRequest,
        responses={
            202: RefreshScheduled,
            400: OpenApiResponse(description="not a served XUI, an unknown auid, bad JSON"),
            409: Detail,
        },
    )
    def post(self, request):
        """Fetch a presentity's pres-rules and pidf-manipulation documents again, in the
        background; watchers whose authorization changes are notified."""
        if not external.enabled():
            detail = "XCAP_EXTERNAL_ROOT is not set: the documents are this server's own"
            return Response({"detail": detail}, status=409)
        form = RefreshRequest(data=request.data)
        form.is_valid(raise_exception=True)
        xui, auid = form.validated_data["xui"], form.validated_data.get("auid")
        auids = (auid,) if auid else external.AUIDS
        # One hop to the event loop to start the task; nothing waits for the fetch.
        async_to_sync(external.fetcher().schedule)(xui, auids)
        log.info("refresh of %s (%s) asked by %s", xui, ", ".join(auids), request.user)
        return Response({"xui": xui, "auids": list(auids), "status": "scheduled"}, status=202)


urlpatterns = [path("refresh/", RefreshView.as_view(), name="xcap-refresh")]
