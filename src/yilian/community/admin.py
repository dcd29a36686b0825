"""Django admin for the community reference data: read-mostly, searchable.

Organisations and staff are created through ``community.services`` (pages and API) so that
paths, hierarchy rules, 三员分立 and the audit trail hold; the admin only edits harmless
descriptive fields and never deletes.
"""

from __future__ import annotations

from django.contrib import admin

from yilian.community.models import Department, Organisation


class DepartmentInline(admin.TabularInline):
    model = Department
    extra = 0
    fields = ("code", "name", "kind", "location", "is_active")
    readonly_fields = ("code",)
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "parent", "status", "county", "township", "path")
    list_filter = ("kind", "status")
    search_fields = ("code", "name", "township", "village", "division_code")
    ordering = ("path",)
    readonly_fields = ("code", "kind", "parent", "path", "depth", "status")
    fields = (
        ("code", "kind", "status"),
        ("parent", "path", "depth"),
        "name",
        ("province", "city", "county"),
        ("township", "village"),
        "address_detail",
        ("division_code", "phone"),
    )
    inlines = [DepartmentInline]
    list_select_related = ("parent",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # community.services.create_organisation assigns the path and audits

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "organisation", "kind", "location", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name", "organisation__name", "organisation__code")
    list_select_related = ("organisation",)
    readonly_fields = ("organisation", "code")
    fields = ("organisation", "code", "name", "kind", "location", "is_active")
    autocomplete_fields = ()

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
