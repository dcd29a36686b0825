"""Admin of notifications: message templates are reference data a hospital edits; the SMS log is read-only."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from yilian.common.masking import mask_phone
from yilian.notifications.models import MessageTemplate, SmsMessage


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ("code", "title", "urgent", "sms_enabled")
    list_filter = ("urgent", "sms_enabled")
    search_fields = ("code", "title", "body")
    fields = ("code", "title", "body", "variables", "urgent", "sms_enabled")

    def get_readonly_fields(self, request, obj=None):
        # Callers refer to templates by code: renaming one would silently switch them to "generic".
        return ("code",) if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SmsMessage)
class SmsMessageAdmin(admin.ModelAdmin):
    """Delivery log for support staff: status and errors, phone masked, never editable."""

    list_display = ("created_at", "masked_phone", "template_code", "status", "attempts", "sent_at")
    list_filter = ("status", "template_code", "urgent")
    fields = (
        "masked_phone",
        "template_code",
        "body",
        "urgent",
        "status",
        "attempts",
        "last_error",
        "not_before",
        "provider_id",
        "created_at",
        "claimed_at",
        "sent_at",
    )
    readonly_fields = fields

    @admin.display(description=_("手机号"))
    def masked_phone(self, obj: SmsMessage) -> str:
        return mask_phone(obj.phone)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
