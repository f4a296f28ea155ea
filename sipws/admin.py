"""Django admin for SIP users and their current registrations."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages

from . import runtime
from .models import (
    ActiveWatcher,
    OfflineMessage,
    Presentity,
    Registration,
    SipAccount,
    Watcher,
)
from .services import accounts, operations


class SipAccountForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Stored only as digest hashes. Leave blank to keep the current password.",
    )

    class Meta:
        model = SipAccount
        fields = ["username", "domain", "password", "enabled", "user"]

    def clean_domain(self):
        domain = self.cleaned_data["domain"].lower()
        try:
            accounts.check_domain(domain)
        except accounts.AccountError as error:
            raise forms.ValidationError(str(error)) from None
        return domain

    def clean(self):
        data = super().clean()
        if self.instance.pk is None and not data.get("password"):
            self.add_error("password", "A new SIP user needs a password.")
        return data

    def save(self, commit=True):
        account = super().save(commit=False)
        password = self.cleaned_data.get("password")
        if password:
            account.set_password(password)
            if account.user is None:
                # As `sipuser add` does: the web page logs in with the same identity.
                account.user = accounts.login_for(str(account), password)
            elif "password" in self.changed_data:
                account.user.set_password(password)
                account.user.save(update_fields=["password"])
        if commit:
            account.save()
        return account


class RegistrationInline(admin.TabularInline):
    model = Registration
    extra = 0
    can_delete = True
    fields = ["contact", "transport", "received", "expires", "user_agent", "instance_id"]
    readonly_fields = fields


@admin.register(SipAccount)
class SipAccountAdmin(admin.ModelAdmin):
    form = SipAccountForm
    list_display = ["__str__", "enabled", "registration_count", "user", "created"]
    list_filter = ["enabled", "domain"]
    search_fields = ["username", "domain"]
    inlines = [RegistrationInline]
    actions = ["enable", "disable"]

    def save_model(self, request, account, form, change):
        super().save_model(request, account, form, change)
        if change and "enabled" in form.changed_data and not account.enabled:
            accounts.set_enabled(str(account), False)  # drops its bindings, as `sipuser` does

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.base_fields["domain"].help_text = "One of: " + ", ".join(settings.SIP["DOMAINS"])
        return form

    @admin.display(description="registrations")
    def registration_count(self, account):
        return account.registrations.count()

    @admin.action(description="Enable selected SIP users")
    def enable(self, request, queryset):
        for account in queryset:
            accounts.set_enabled(str(account), True)
        self.message_user(request, f"{queryset.count()} enabled", messages.SUCCESS)

    @admin.action(description="Disable selected SIP users (drops their registrations)")
    def disable(self, request, queryset):
        for account in queryset:
            accounts.set_enabled(str(account), False)
        self.message_user(request, f"{queryset.count()} disabled", messages.SUCCESS)


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    list_display = ["aor", "contact", "transport", "received", "expires", "user_agent"]
    list_filter = ["transport"]
    search_fields = ["aor", "contact", "user_agent"]
    readonly_fields = [f.name for f in Registration._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Presentity)
class PresentityAdmin(admin.ModelAdmin):
    list_display = ["uri", "event", "etag", "expires", "publisher", "sender"]
    list_filter = ["event"]
    search_fields = ["uri", "publisher", "sender"]
    readonly_fields = ["body_text"]
    actions = ["refresh_watchers"]

    @admin.display(description="body")
    def body_text(self, publication):
        return bytes(publication.body).decode("utf-8", "replace")

    @admin.action(description="Refresh the watchers of the selected presentities (NOTIFY)")
    def refresh_watchers(self, request, queryset):
        pairs = set(queryset.values_list("uri", "event"))
        _run_each(self, request, "refresh", [{"presentity": u, "event": e} for u, e in pairs])


@admin.register(ActiveWatcher)
class ActiveWatcherAdmin(admin.ModelAdmin):
    list_display = ["watcher_uri", "presentity_uri", "event", "status", "expires", "user_agent"]
    list_filter = ["event", "status"]
    search_fields = ["watcher_uri", "presentity_uri", "call_id"]
    actions = ["terminate"]

    @admin.action(description="Terminate the selected subscriptions (reason=deactivated)")
    def terminate(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        _run_each(self, request, "terminate", [{"subscription_id": pk} for pk in ids])


@admin.register(Watcher)
class WatcherAdmin(admin.ModelAdmin):
    list_display = ["watcher_uri", "presentity_uri", "event", "status", "reason", "inserted_time"]
    list_filter = ["event", "status"]
    search_fields = ["watcher_uri", "presentity_uri"]
    actions = ["reevaluate"]

    @admin.action(description="Re-evaluate the watchers of the selected presentities' rules")
    def reevaluate(self, request, queryset):
        pairs = set(queryset.values_list("presentity_uri", "event"))
        _run_each(self, request, "reevaluate", [{"presentity": u, "event": e} for u, e in pairs])


def _run_each(model_admin, request, action: str, calls: list[dict]) -> None:
    """Run one operation per call (services.operations) and say what it did."""
    server = runtime.get_server()
    notified, failed = 0, []
    for arguments in sorted(calls, key=lambda a: sorted(a.items())):
        try:
            notified += operations.run(server, action, **arguments)["notified"]
        except operations.OperationError as error:
            failed.append(str(error))
    done = len(calls) - len(failed)
    model_admin.message_user(request, f"{action}: {done} done, {notified} NOTIFY(s) sent")
    for error in failed:
        model_admin.message_user(request, f"{action}: {error}", messages.WARNING)


@admin.register(OfflineMessage)
class OfflineMessageAdmin(admin.ModelAdmin):
    """MESSAGEs waiting for their recipient's next REGISTER (SIP_OFFLINE_MESSAGES)."""

    list_display = ["account", "sender", "content_type", "size", "received", "expires"]
    list_filter = ["content_type"]
    search_fields = ["sender", "account__username", "account__domain"]
    exclude = ["body"]
    readonly_fields = [
        "account",
        "sender",
        "from_header",
        "to_header",
        "content_type",
        "body_text",
        "size",
        "received",
        "expires",
        "sending_until",
    ]

    def has_add_permission(self, request):
        return False

    @admin.display(description="body")
    def body_text(self, message):
        return bytes(message.body).decode("utf-8", "replace")
