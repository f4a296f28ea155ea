"""XCAP documents in Django admin: browse by AUID and domain, edit a document as text.

An edit goes through the same validation as an XCAP PUT and through `store`, so it gets a
new ETag and sends `document_changed` (presence re-evaluates that user's watchers).
"""

from django import forms
from django.contrib import admin

from . import documents, store
from .errors import XcapError
from .models import XcapDocument
from .uri import canonical_xui
from .usages import all_usages
from .usages import get as get_usage


class XcapDocumentForm(forms.ModelForm):
    auid = forms.ChoiceField(
        label="AUID",
        choices=[(u.auid, f"{u.auid}: {u.description}") for u in all_usages() if u.users_tree],
    )
    text = forms.CharField(
        label="Document",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "spellcheck": "false"}),
        help_text="The XML document, UTF-8; checked against the application usage's schema.",
    )

    class Meta:
        model = XcapDocument
        fields = ["auid", "xui", "name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["text"].initial = bytes(self.instance.body).decode("utf-8", "replace")

    def clean_xui(self):
        xui = self.cleaned_data["xui"].strip()
        parsed = canonical_xui(xui)
        if parsed is None:
            raise forms.ValidationError("An XUI is a SIP URI: sip:user@domain.")
        return f"sip:{parsed[0]}@{parsed[1]}"

    def clean(self):
        cleaned = super().clean()
        usage = get_usage(cleaned.get("auid") or "")
        if usage is None or "text" not in cleaned or "xui" not in cleaned:
            return cleaned
        body = cleaned["text"].encode("utf-8")
        try:
            root = documents.parse_document(body, max_bytes=max(len(body), 1))
            usage.validate(root, xui=cleaned["xui"], name=cleaned.get("name") or "index")
        except XcapError as exc:
            message = f"{exc.reason}: {exc.phrase}" if exc.phrase else exc.reason
            raise forms.ValidationError(message) from None
        cleaned["body"] = body
        return cleaned


@admin.register(XcapDocument)
class XcapDocumentAdmin(admin.ModelAdmin):
    form = XcapDocumentForm
    list_display = ("xui", "auid", "name", "domain", "etag", "source", "updated")
    list_filter = ("auid", "domain", "source")
    search_fields = ("xui", "username", "name")
    readonly_fields = (
        "username",
        "domain",
        "doc_type",
        "content_type",
        "etag",
        "source",
        "updated",
    )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            old = XcapDocument.objects.get(pk=obj.pk)
            if (old.auid, old.xui, old.name) != (data["auid"], data["xui"], data["name"]):
                store.delete_document(old)
        saved, _created = store.save_document(
            auid=data["auid"], xui=data["xui"], name=data["name"], body=data["body"]
        )
        for field in ("pk", "username", "domain", "doc_type", "content_type", "etag", "body"):
            setattr(obj, field, getattr(saved, field))

    def delete_model(self, request, obj):
        store.delete_document(obj)

    def delete_queryset(self, request, queryset):
        for document in queryset:
            store.delete_document(document)
