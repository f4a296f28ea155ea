from django.apps import AppConfig


class XcapConfig(AppConfig):
    name = "xcapapi"
    verbose_name = "XCAP"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import integration  # noqa: F401
