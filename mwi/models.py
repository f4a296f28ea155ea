"""The message-waiting state as Django sees it: the permission a voicemail system needs.

MWI state is no table of its own: it is the mailbox owner's `message-summary`
publications in sipws' Presentity table. This proxy model names those rows and carries
the "can push MWI" permission (`mwi.push_mwi`) that lets a non-staff user (a voicemail
system's API token) write them through the REST API or by SIP PUBLISH.
"""

from django.db import models

from sipws.models import Presentity

from .package import NAME


class MessageWaitingManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(event=NAME)


class MessageWaiting(Presentity):
    objects = MessageWaitingManager()

    class Meta:
        proxy = True
        default_permissions = ()
        permissions = [("push_mwi", "Can push message-waiting state for any mailbox")]
        verbose_name = "message-waiting state"
