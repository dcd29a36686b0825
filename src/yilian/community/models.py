"""The county medical community (县域医共体): organisations, departments, staff and their roles."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Organisation(models.Model):
    """A member institution (医疗机构): county hospital, township centre, village clinic, community centre.

    ``path`` is a materialised path (``"0001."``, ``"0001.0003."``, …) kept by
    ``community.services``; a subtree is a prefix match on an indexed column, which is how
    the policy module scopes every patient query.
    """

    class Kind(models.TextChoices):
        COUNTY_HOSPITAL = "county_hospital", _("县级医院（牵头医院）")
        TOWNSHIP_CENTRE = "township_centre", _("乡镇卫生院")
        COMMUNITY_CENTRE = "community_centre", _("社区卫生服务中心")
        VILLAGE_CLINIC = "village_clinic", _("村卫生室")

    class Status(models.TextChoices):
        ACTIVE = "active", _("运营中")
        SUSPENDED = "suspended", _("暂停")
        CLOSED = "closed", _("已撤销")

    code = models.CharField(_("机构编码"), max_length=32, unique=True)
    name = models.CharField(_("机构名称"), max_length=100)
    kind = models.CharField(_("机构类型"), max_length=20, choices=Kind.choices)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        verbose_name=_("上级机构"),
    )
    path = models.CharField(max_length=255, unique=True, editable=False)
    depth = models.PositiveSmallIntegerField(default=0, editable=False)
    province = models.CharField(_("省"), max_length=30)
    city = models.CharField(_("市"), max_length=30)
    county = models.CharField(_("县（区）"), max_length=30)
    township = models.CharField(_("乡镇（街道）"), max_length=30, blank=True)
    village = models.CharField(_("村（社区）"), max_length=30, blank=True)
    address_detail = models.CharField(_("详细地址"), max_length=120, blank=True)
    division_code = models.CharField(_("行政区划代码"), max_length=12, blank=True)
    phone = models.CharField(_("联系电话"), max_length=20, blank=True)
    status = models.CharField(_("状态"), max_length=10, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        ordering = ["path"]
        verbose_name = _("医疗机构")
        verbose_name_plural = _("医疗机构")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(parent__isnull=True) | ~models.Q(kind="county_hospital"),
                name="org_county_hospital_is_root",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def address(self) -> str:
        return "".join(
            [self.province, self.city, self.county, self.township, self.village, self.address_detail]
        )


class Department(models.Model):
    """A department (科室) of an organisation, e.g. 心血管内科 of the county hospital."""

    class Kind(models.TextChoices):
        CLINICAL = "clinical", _("临床科室")
        MEDTECH = "medtech", _("医技科室")
        NURSING = "nursing", _("护理单元")
        ADMIN = "admin", _("职能科室")

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="departments")
    code = models.CharField(_("科室编码"), max_length=32)
    name = models.CharField(_("科室名称"), max_length=60)
    kind = models.CharField(_("科室类别"), max_length=10, choices=Kind.choices, default=Kind.CLINICAL)
    location = models.CharField(_("位置"), max_length=60, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        ordering = ["organisation", "code"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "code"], name="dept_code_unique_per_org")
        ]
        verbose_name = _("科室")
        verbose_name_plural = _("科室")

    def __str__(self) -> str:
        return self.name


class Staff(models.Model):
    """A member of staff (医务人员/工作人员) with professional title and practising licence."""

    class Title(models.TextChoices):
        CHIEF_PHYSICIAN = "chief_physician", _("主任医师")
        ASSOC_CHIEF_PHYSICIAN = "assoc_chief_physician", _("副主任医师")
        ATTENDING_PHYSICIAN = "attending_physician", _("主治医师")
        RESIDENT_PHYSICIAN = "resident_physician", _("住院医师")
        ASSISTANT_PHYSICIAN = "assistant_physician", _("执业助理医师")
        VILLAGE_DOCTOR = "village_doctor", _("乡村医生")
        CHIEF_NURSE = "chief_nurse", _("主任护师")
        ASSOC_CHIEF_NURSE = "assoc_chief_nurse", _("副主任护师")
        SUPERVISOR_NURSE = "supervisor_nurse", _("主管护师")
        SENIOR_NURSE = "senior_nurse", _("护师")
        NURSE = "nurse", _("护士")
        CHIEF_PHARMACIST = "chief_pharmacist", _("主任药师")
        ASSOC_CHIEF_PHARMACIST = "assoc_chief_pharmacist", _("副主任药师")
        SUPERVISOR_PHARMACIST = "supervisor_pharmacist", _("主管药师")
        PHARMACIST = "pharmacist", _("药师")
        ASSISTANT_PHARMACIST = "assistant_pharmacist", _("药士")
        NONE = "none", _("无专业技术职称")

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="staff")
    name = models.CharField(_("姓名"), max_length=40)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="staff")
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )
    title = models.CharField(_("专业技术职称"), max_length=30, choices=Title.choices, default=Title.NONE)
    licence_number = models.CharField(_("执业证书编码"), max_length=40, blank=True)
    practice_start_date = models.DateField(_("执业起始日期"), null=True, blank=True)
    is_active = models.BooleanField(_("在职"), default=True)

    class Meta:
        ordering = ["organisation", "name"]
        verbose_name = _("工作人员")
        verbose_name_plural = _("工作人员")
        constraints = [
            models.UniqueConstraint(
                fields=["licence_number"], condition=~models.Q(licence_number=""), name="staff_licence_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name


class RoleAssignment(models.Model):
    """A role held at an organisation (reaching its subtree); see ``common.policy``."""

    staff = models.ForeignKey(Staff, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(_("角色"), max_length=20)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["staff", "role", "organisation"], name="role_assignment_unique")
        ]
        verbose_name = _("角色分配")
        verbose_name_plural = _("角色分配")

    def __str__(self) -> str:
        return f"{self.staff} {self.role}@{self.organisation_id}"
