from django.apps import AppConfig
from django.conf import settings


class SipwsConfig(AppConfig):
    name = "sipws"
    verbose_name = "SIP"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Event packages and their hooks, before any request or HTTP view can need them.
        from .event_packages import base as packages
        from .event_packages.presence import PresencePackage
        from .services import dialog, winfo

        packages.register(PresencePackage(neutral=settings.SIP["NEUTRAL_BODY"]))
        winfo.install()
        dialog.install()
