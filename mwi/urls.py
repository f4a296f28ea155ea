"""MWI URLs: one resource per mailbox, /api/mwi/{user@domain}/."""

from django.urls import path

from .views import MailboxView

app_name = "mwi"
urlpatterns = [path("<str:mailbox>/", MailboxView.as_view(), name="mailbox")]
