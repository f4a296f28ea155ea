"""Installs the dialog (RFC 4235) and dialog;sla (shared line) packages from settings.

A shared line is an account of its own (the line's AOR, which its phones call and are
called on); `SLA_GROUPS` names the users who are its members. A member may publish its
dialogs on the line and watch the line; anyone else gets 403 for either.
"""

from __future__ import annotations

from django.conf import settings

from ..event_packages import base as packages
from ..event_packages.dialog import DialogPackage, SharedLineDialogPackage, parse_groups
from . import policy


def install() -> None:
    options = {
        "force_single": settings.SIP["DIALOG_FORCE_SINGLE"],
        "force_dummy": settings.SIP["DIALOG_FORCE_DUMMY"],
    }
    packages.register(DialogPackage(**options))
    sla = SharedLineDialogPackage(groups=parse_groups(settings.SIP["SLA_GROUPS"]), **options)
    packages.register(sla)

    def member_watches(watcher: str, line: str) -> policy.Decision:
        return policy.ALLOW if sla.is_member(watcher, line) else policy.FORBIDDEN

    policy.register(sla.name, member_watches)
    policy.register_publisher(sla.name, lambda account, line: sla.is_member(account.aor, line))
