"""Who may use the MWI REST API: staff, or a user holding `mwi.push_mwi`."""

from rest_framework.permissions import BasePermission

from .integration import may_push


class CanPushMwi(BasePermission):
    message = "This user may not read or set message-waiting state (staff or mwi.push_mwi)."

    def has_permission(self, request, view) -> bool:
        return may_push(request.user)
