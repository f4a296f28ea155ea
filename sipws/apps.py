from django.apps import AppConfig


class SipwsConfig(AppConfig):
    name = "sipws"
    verbose_name = "SIP"
    default_auto_field = "django.db.models.BigAutoField"
