"""Settings the hot path reads on every statement or change, read once.

Every read through Django's lazy `settings` object is a chain of Python calls. The value
is kept until `override_settings` (a test) changes that setting.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

_read: dict[str, Any] = {}


def setting(name: str) -> Any:
    try:
        return _read[name]
    except KeyError:
        value = _read[name] = getattr(settings, name)
        return value


@receiver(setting_changed)
def _forget(setting: str, **_) -> None:
    _read.pop(setting, None)
