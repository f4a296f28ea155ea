from django.apps import AppConfig


class MwiConfig(AppConfig):
    name = "mwi"
    verbose_name = "Message waiting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import integration

        integration.install()
