"""Who may do what (RFC 4825 §5.7): users own their tree, staff read all, global is read-only.

The global tree here holds only documents the server generates (xcap-caps, the rls-services
index), which no client can write: a PUT or DELETE there is 405 with `Allow: GET`, a
property of the resource rather than of who asks. So is a write of pres-rules or
pidf-manipulation while they are kept on an external XCAP server (XCAP_EXTERNAL_ROOT).
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from rest_framework.permissions import SAFE_METHODS, BasePermission

from . import external
from .errors import MethodNotAllowed


def principal_aor(user) -> str | None:
    """The SIP address of record of a request's user (SIP principal or Django user)."""
    aor = getattr(user, "aor", None)
    if aor:
        return aor
    try:
        return user.sip_account.aor
    except (AttributeError, ObjectDoesNotExist):
        return None


def is_staff(user) -> bool:
    return bool(getattr(user, "is_staff", False))


class XcapAccess(BasePermission):
    message = "these documents belong to another user"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False  # DRF answers 401 when no authenticator succeeded
        target = view.target
        if target.is_global:
            if request.method not in SAFE_METHODS:
                raise MethodNotAllowed("GET", "the global tree is read-only")
            return True
        if request.method not in SAFE_METHODS and external.manages(target.auid):
            raise MethodNotAllowed("GET", "these documents are kept on the external XCAP server")
        if target.xui is not None and principal_aor(user) == target.xui:
            return True
        return request.method in SAFE_METHODS and is_staff(user)
