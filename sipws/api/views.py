"""Thin DRF views over `services.operations`: staff only, token or session.

Reads are ordinary list and detail views; each action is a POST that runs one `do_*`
operation and sends its NOTIFYs before answering, so the answer says how many went out.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import APIException
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import runtime
from ..services import operations
from . import serializers as s

TAGS = ["operations"]
ERRORS = {400: s.ErrorSerializer, 404: s.ErrorSerializer}
EVENT = OpenApiParameter("event", str, default="presence", description="The event package.")


class Page(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000


class StaffView(APIView):
    # Token first: an anonymous request gets 401 with `WWW-Authenticate: Token`.
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAdminUser]

    def handle_exception(self, exc):
        if isinstance(exc, operations.OperationError):
            error = APIException(str(exc))
            error.status_code = exc.status
            exc = error
        return super().handle_exception(exc)

    def filters(self, serializer_class) -> dict:
        query = serializer_class(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data


@extend_schema(tags=TAGS, parameters=[s.PresentityFilter], summary="List presentities")
class PresentityList(StaffView, generics.ListAPIView):
    """Presentities with publications, one row per presentity and event."""

    serializer_class = s.PresentitySummarySerializer
    pagination_class = Page

    def get_queryset(self):
        return operations.presentity_list(**self.filters(s.PresentityFilter))


class PresentityDetail(StaffView):
    @extend_schema(
        tags=TAGS,
        summary="Show one presentity",
        parameters=[EVENT],
        responses={200: s.PresentityDetailSerializer, **ERRORS},
    )
    def get(self, request, uri):
        """Its publications of one event and the aggregated state its watchers get."""
        event = request.query_params.get("event", "presence")
        detail = operations.presentity_detail(uri, event)
        return Response(s.PresentityDetailSerializer(detail).data)


class PresentityAction(StaffView):
    action = ""

    def post(self, request, uri):
        body = s.EventSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        server = runtime.get_server()
        return Response(operations.run(server, self.action, presentity=uri, **body.validated_data))


class Refresh(PresentityAction):
    action = "refresh"

    @extend_schema(
        tags=TAGS,
        summary="Refresh the watchers of a presentity",
        request=s.EventSerializer,
        responses={200: s.RefreshResultSerializer, **ERRORS},
    )
    def post(self, request, uri):
        """NOTIFY every watcher with the current state (Kamailio's refreshWatchers)."""
        return super().post(request, uri)


class Reevaluate(PresentityAction):
    action = "reevaluate"

    @extend_schema(
        tags=TAGS,
        summary="Re-evaluate the watchers of a presentity",
        request=s.EventSerializer,
        responses={200: s.ReevaluateResultSerializer, **ERRORS},
    )
    def post(self, request, uri):
        """Decide every watcher again from the presentity's rules (updateWatchers) and
        NOTIFY them: a pending watcher now allowed becomes active, a blocked one ends."""
        return super().post(request, uri)


@extend_schema(tags=TAGS, parameters=[s.SubscriptionFilter], summary="List subscriptions")
class SubscriptionList(StaffView, generics.ListAPIView):
    """Subscription dialogs (active_watchers), filtered."""

    serializer_class = s.SubscriptionSerializer
    pagination_class = Page

    def get_queryset(self):
        return operations.subscription_list(**self.filters(s.SubscriptionFilter))


@extend_schema(tags=TAGS, summary="Show one subscription")
class SubscriptionDetail(StaffView, generics.RetrieveAPIView):
    serializer_class = s.SubscriptionSerializer
    queryset = operations.subscription_list()


class Terminate(StaffView):
    @extend_schema(
        tags=TAGS,
        summary="Terminate a subscription",
        request=None,
        responses={200: s.TerminateResultSerializer, 404: s.ErrorSerializer},
    )
    def post(self, request, pk):
        """The watcher gets `terminated;reason=deactivated` and may subscribe again."""
        return Response(operations.run(runtime.get_server(), "terminate", subscription_id=pk))


@extend_schema(tags=TAGS, parameters=[s.SubscriptionFilter], summary="List watchers")
class WatcherList(StaffView, generics.ListAPIView):
    """Who asked to watch whom, and the authorization decision (watchers table)."""

    serializer_class = s.WatcherSerializer
    pagination_class = Page

    def get_queryset(self):
        return operations.watcher_list(**self.filters(s.SubscriptionFilter))


class Cleanup(StaffView):
    @extend_schema(
        tags=TAGS,
        summary="Clean up expired state now",
        request=None,
        responses={200: s.CleanupResultSerializer},
    )
    def post(self, request):
        """Expire what is due now, as the expiry timer would (Kamailio's presence.cleanup)."""
        return Response(operations.run(runtime.get_server(), "cleanup"))
