"""Django admin for SIP users and their current registrations."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages

from .models import ActiveWatcher, Presentity, Registration, SipAccount, Watcher
from .services import accounts


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

    @admin.display(description="body")
    def body_text(self, publication):
        return bytes(publication.body).decode("utf-8", "replace")


@admin.register(ActiveWatcher)
class ActiveWatcherAdmin(admin.ModelAdmin):
    list_display = ["watcher_uri", "presentity_uri", "event", "status", "expires", "user_agent"]
    list_filter = ["event", "status"]
    search_fields = ["watcher_uri", "presentity_uri", "call_id"]


@admin.register(Watcher)
class WatcherAdmin(admin.ModelAdmin):
    list_display = ["watcher_uri", "presentity_uri", "event", "status", "reason", "inserted_time"]
    list_filter = ["event", "status"]
    search_fields = ["watcher_uri", "presentity_uri"]
