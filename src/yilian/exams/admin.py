"""Reference data of the exam centre, edited by the hospital: the catalogue with its preparation
rules (E-4 is data), devices and rooms, physical-exam packages with their items (PE-1)."""

from django.contrib import admin

from yilian.exams.models import ExamPackage, ExamResource, ExamType, PackageItem


@admin.register(ExamType)
class ExamTypeAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "name",
        "modality",
        "duration_minutes",
        "requires_fasting",
        "breaks_fast",
        "gi_contrast",
        "gi_contrast_sensitive",
        "iodinated_contrast",
        "sedation",
        "is_active",
    )
    list_filter = ("modality", "requires_fasting", "is_active")
    search_fields = ("code", "name")
    filter_horizontal = ("must_precede",)


@admin.register(ExamResource)
class ExamResourceAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "name",
        "modality",
        "site",
        "location",
        "segment_minutes",
        "capacity_per_segment",
        "is_active",
    )
    list_filter = ("modality", "site", "is_active")
    search_fields = ("code", "name")
    filter_horizontal = ("exam_types",)


class PackageItemInline(admin.TabularInline):
    model = PackageItem
    extra = 1


@admin.register(ExamPackage)
class ExamPackageAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "price", "daily_capacity", "is_active")
    inlines = [PackageItemInline]
