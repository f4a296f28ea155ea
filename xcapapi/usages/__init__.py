"""The application usages this server knows, one module each, looked up by AUID."""

from __future__ import annotations

from .base import ApplicationUsage
from .pidf_manipulation import PidfManipulation
from .pres_rules import OmaPresRules, PresRules
from .resource_lists import ResourceLists
from .rls_services import RlsServices
from .xcap_caps import XcapCaps

_USAGES: dict[str, ApplicationUsage] = {
    usage.auid: usage
    for usage in (
        PresRules(),
        OmaPresRules(),
        ResourceLists(),
        RlsServices(),
        PidfManipulation(),
        XcapCaps(),
    )
}


def get(auid: str) -> ApplicationUsage | None:
    return _USAGES.get(auid)


def all_usages() -> list[ApplicationUsage]:
    return list(_USAGES.values())


__all__ = ["ApplicationUsage", "all_usages", "get"]
