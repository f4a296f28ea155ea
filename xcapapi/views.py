"""The XCAP resource view: GET, PUT and DELETE of documents, elements and attributes.

Thin glue between HTTP and `documents`: find the target and the stored document, check
who asks and the preconditions, run the operation, validate with the application usage,
store. Every answer carries the document's ETag while the document exists.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpResponse
from django.urls import reverse
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.views import APIView

from . import documents, store
from .authentication import (
    BasicAuthentication,
    DigestAuthentication,
    XcapSessionAuthentication,
    challenges,
)
from .errors import (
    BadRequest,
    ConstraintFailure,
    MethodNotAllowed,
    NoParent,
    NotFound,
    PayloadTooLarge,
    XcapError,
)
from .etags import check_preconditions, quoted
from .models import XcapDocument
from .permissions import XcapAccess
from .selectors import (
    NamespaceSelector,
    SelectorError,
    encode_selector,
    parse_selector,
    parse_xmlns,
)
from .uri import parse_target, raw_path

log = logging.getLogger("xcapapi")
USER_METHODS = "GET, PUT, DELETE"


class AnyAccept(BaseContentNegotiation):
    """XCAP answers in the resource's own media type whatever Accept says: no 406."""

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ChallengeResponse(HttpResponse):
    """A 401 with one WWW-Authenticate header per challenge.

    Django keeps one value per header name; the servers read `items()`, so the extra
    challenges go out as headers of their own, in order (MD5 first, RFC 7616 §3.7).
    """

    def __init__(self, values: list[str]) -> None:
        super().__init__(
            b"authentication required\n", status=401, content_type="text/plain; charset=utf-8"
        )
        self["WWW-Authenticate"] = values[0]
        self.more_challenges = values[1:]

    def items(self):
        extra = [("WWW-Authenticate", value) for value in self.more_challenges]
        return [*super().items(), *extra]


def _root_prefix() -> str:
    return reverse("xcapapi:resource", kwargs={"path": ""})


class XcapView(APIView):
    authentication_classes = (
        DigestAuthentication,
        BasicAuthentication,
        XcapSessionAuthentication,
    )
    permission_classes = (XcapAccess,)
    content_negotiation_class = AnyAccept

    target = None
    selector = None
    etag: str | None = None

    @property
    def default_response_headers(self):
        return {}  # DRF's Allow and Vary headers do not describe XCAP resources

    # Request set-up ---------------------------------------------------------------------

    def initial(self, request, *args, **kwargs):
        prefix = _root_prefix()
        below = raw_path(request._request).split("/")[prefix.rstrip("/").count("/") + 1 :]
        self.target = parse_target("/".join(below), request.META.get("QUERY_STRING", ""))
        request.xcap_target = self.target
        super().initial(request, *args, **kwargs)
        if self.target.node_selector is not None:
            try:
                bindings = parse_xmlns(self.target.query)
                self.selector = parse_selector(
                    self.target.node_selector, bindings, self.target.usage.default_namespace
                )
            except SelectorError as exc:
                raise BadRequest(f"invalid node selector: {exc}") from None

    def _body(self, request) -> bytes:
        limit = settings.XCAP["MAX_DOCUMENT_SIZE"]
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(f"bodies are limited to {limit} bytes")
        try:
            body = request._request.body
        except RequestDataTooBig:
            raise PayloadTooLarge(f"bodies are limited to {limit} bytes") from None
        if len(body) > limit:
            raise PayloadTooLarge(f"bodies are limited to {limit} bytes")
        return body

    def _stored(self, *, lock: bool) -> XcapDocument | None:
        target = self.target
        rows = XcapDocument.objects.filter(auid=target.auid, xui=target.xui, name=target.name)
        document = (rows.select_for_update() if lock else rows).first()
        self.etag = document.etag if document else None
        return document

    def _check_preconditions(self, request, current: str | None) -> None:
        check_preconditions(
            request.method,
            current,
            request.META.get("HTTP_IF_MATCH"),
            request.META.get("HTTP_IF_NONE_MATCH"),
        )

    def _uri(self, path: str) -> str:
        return self.request.build_absolute_uri(_root_prefix() + path)

    def _ancestor(self, matched: int) -> str:
        """The closest existing parent of a failed insertion, as an HTTP URI (§11.1)."""
        document = self._uri(self.target.document_path)
        if matched == 0:
            return document
        steps = "/".join(step.text for step in self.selector.steps[:matched])
        bindings = parse_xmlns(self.target.query)
        return f"{document}/~~/{encode_selector(steps, bindings)}"

    def _response(self, status: int, body: bytes = b"", content_type: str | None = None):
        response = HttpResponse(body, status=status, content_type=content_type)
        if not body and content_type is None:
            del response["Content-Type"]
        if self.etag:
            response["ETag"] = quoted(self.etag)
        response["Cache-Control"] = "no-cache"
        return response

    # Methods ----------------------------------------------------------------------------

    def get(self, request, *args, **kwargs):
        target = self.target
        if target.is_global:
            data = target.usage.global_document(target.name)
            if data is None:
                raise NotFound("no such global document")
            self.etag = hashlib.sha256(data).hexdigest()[:24]
        else:
            document = self._stored(lock=False)
            if document is None:
                raise NotFound("no such document")
            data = bytes(document.body)
        self._check_preconditions(request, self.etag)
        body, content_type = documents.read(data, self.selector, target.usage.mime_type)
        return self._response(200, body, content_type)

    def put(self, request, *args, **kwargs):
        target, selector = self.target, self.selector
        if selector is not None and isinstance(selector.terminal, NamespaceSelector):
            raise MethodNotAllowed("GET", "namespace bindings cannot be written")
        body = self._body(request)
        content_type = request.META.get("CONTENT_TYPE")
        limit = settings.XCAP["MAX_DOCUMENT_SIZE"]
        with transaction.atomic():
            document = self._stored(lock=True)
            if selector is None:
                self._check_preconditions(request, self.etag)
                documents.require_media_type(content_type, target.usage.mime_type)
                new, created = body, document is None
            else:
                if document is None:
                    raise NoParent(
                        "the document does not exist", ancestor=self._uri(target.home_path)
                    )
                self._check_preconditions(request, self.etag)
                try:
                    if selector.terminal is None:
                        new, created = documents.put_element(
                            bytes(document.body), selector, body, content_type
                        )
                    else:
                        new, created = documents.put_attribute(
                            bytes(document.body), selector, body, content_type
                        )
                except documents.ParentMissing as exc:
                    raise NoParent(
                        "the parent element does not exist", ancestor=self._ancestor(exc.matched)
                    ) from None
                if len(new) > limit:
                    raise ConstraintFailure(f"the document would exceed {limit} bytes")
            self._store(new)
        response = self._response(201 if created else 200)
        if created:
            response["Location"] = request.build_absolute_uri(raw_path(request._request))
        return response

    def delete(self, request, *args, **kwargs):
        selector = self.selector
        if selector is not None and isinstance(selector.terminal, NamespaceSelector):
            raise MethodNotAllowed("GET", "namespace bindings cannot be deleted")
        with transaction.atomic():
            document = self._stored(lock=True)
            if document is None:
                raise NotFound("no such document")
            self._check_preconditions(request, self.etag)
            if selector is None:
                store.delete_document(document)
                self.etag = None
                return self._response(200)
            self._store(documents.delete_node(bytes(document.body), selector))
        return self._response(200)

    def options(self, request, *args, **kwargs):
        response = self._response(200)
        response["Allow"] = "GET" if self.target.is_global else USER_METHODS
        return response

    def _store(self, new: bytes) -> None:
        """Validate the resulting document (RFC 4825 §8.2.5) and save it."""
        target = self.target
        limit = settings.XCAP["MAX_DOCUMENT_SIZE"]
        root = documents.parse_document(new, max_bytes=max(limit, len(new)))
        target.usage.validate(root, xui=target.xui, name=target.name)
        saved, _created = store.save_document(
            auid=target.auid, xui=target.xui, name=target.name, body=new
        )
        self.etag = saved.etag

    # Errors -----------------------------------------------------------------------------

    def handle_exception(self, exc):
        request = self.request
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            stale = getattr(request, "xcap_stale", False)
            return ChallengeResponse(challenges(request, stale=stale))
        if isinstance(exc, exceptions.MethodNotAllowed):
            global_tree = self.target is not None and self.target.is_global
            exc = MethodNotAllowed("GET" if global_tree else USER_METHODS)
        if isinstance(exc, XcapError):
            response = exc.response()
        elif isinstance(exc, exceptions.APIException):
            response = HttpResponse(
                f"{exc.detail}\n", status=exc.status_code, content_type="text/plain; charset=utf-8"
            )
        else:
            raise exc
        if self.etag and not response.has_header("ETag"):
            response["ETag"] = quoted(self.etag)  # the document exists and is unchanged
        log.info(
            "XCAP %s %s -> %d %s",
            request.method,
            raw_path(request._request),
            response.status_code,
            getattr(exc, "phrase", "") or getattr(exc, "detail", ""),
        )
        return response
