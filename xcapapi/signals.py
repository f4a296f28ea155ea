"""`document_changed`: sent after every committed write of an XCAP document.

Receivers (presence authorization re-evaluating watchers, ...) get keyword arguments
`auid`, `xui`, `name` and `deleted`. The signal goes out from `transaction.on_commit`, so a
receiver reading the database sees the new state and a rolled-back write sends nothing.
"""

import logging

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger("xcapapi")
document_changed = Signal()


def send_on_commit(*, auid: str, xui: str, name: str, deleted: bool) -> None:
    from .models import XcapDocument

    def send() -> None:
        # The write is committed: a failing receiver must not turn it into an error reply.
        results = document_changed.send_robust(
            sender=XcapDocument, auid=auid, xui=xui, name=name, deleted=deleted
        )
        for receiver, result in results:
            if isinstance(result, Exception):
                log.error(
                    "document_changed receiver %r failed for %s/%s/%s",
                    receiver,
                    auid,
                    xui,
                    name,
                    exc_info=result,
                )

    transaction.on_commit(send)
