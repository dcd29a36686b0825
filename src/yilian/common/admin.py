"""Admin of the shared kernel: the audit log, read-only (MLPS 2.0 审计记录不可篡改).

No add, change or delete permission, for anyone, superusers included; the database triggers of
migration 0002 refuse UPDATE/DELETE underneath as well.
"""

from __future__ import annotations

from django.contrib import admin

from yilian.common.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("at", "actor_label", "ip", "action", "object_type", "object_id", "patient_id", "outcome")
    list_filter = ("outcome",)
    search_fields = ("action", "actor_label", "object_id")
    date_hierarchy = "at"
    list_select_related = ("actor",)
    fields = (
        "at",
        "actor",
        "actor_label",
        "actor_org_id",
        "api_key_id",
        "ip",
        "action",
        "object_type",
        "object_id",
        "patient_id",
        "reason",
        "outcome",
        "detail",
    )
    readonly_fields = fields
    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
