"""XCAP documents in the database: Kamailio's `xcap` table, one row per document."""

from django.db import models


class XcapDocument(models.Model):
    """One XML document of one user (or of the global tree) under one application usage.

    `body` holds the document byte for byte as it was PUT; a write through a node selector
    stores the re-serialized document. Every write gives a new `etag`.
    """

    class Source(models.IntegerChoices):
        LOCAL = 0, "this XCAP server"
        EXTERNAL = 1, "fetched from an external XCAP server"

    username = models.CharField(max_length=64, help_text="User part of the owner's SIP URI.")
    domain = models.CharField(max_length=253, help_text="Domain of the owner's SIP URI.")
    auid = models.CharField("AUID", max_length=64, help_text="Application usage, e.g. pres-rules.")
    doc_type = models.PositiveIntegerField(
        default=0, help_text="Kamailio's doc_type bit for the AUID (pres-rules = 2, ...)."
    )
    name = models.CharField("document name", max_length=255, default="index")
    xui = models.CharField(
        "XUI", max_length=300, help_text="XCAP user identifier, e.g. sip:alice@example.com."
    )
    body = models.BinaryField()
    etag = models.CharField(max_length=64)
    content_type = models.CharField(max_length=100)
    source = models.PositiveSmallIntegerField(choices=Source.choices, default=Source.LOCAL)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["auid", "xui", "name"], name="unique_xcap_document")
        ]
        indexes = [models.Index(fields=["username", "domain"])]
        ordering = ["auid", "xui", "name"]
        verbose_name = "XCAP document"

    def __str__(self) -> str:
        return f"{self.auid}/users/{self.xui}/{self.name}"
