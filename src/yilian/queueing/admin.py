"""Django admin for queueing reference data: consulting rooms only. Queues, tickets and the
append-only call log are written by ``queueing.services`` alone (Q-12 audit)."""

from __future__ import annotations

from django.contrib import admin

from yilian.queueing.models import ClinicRoom


@admin.register(ClinicRoom)
class ClinicRoomAdmin(admin.ModelAdmin):
    list_display = ("name", "department", "zone", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "zone", "department__name")

    def has_delete_permission(self, request, obj=None):
        return False
