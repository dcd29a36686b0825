"""Page forms: they only parse and bound lengths; the rules live in ``community.services``."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from yilian.common import labels, policy
from yilian.community import rules
from yilian.community.models import Department, Organisation, Staff


class OrganisationForm(forms.Form):
    parent_code = forms.CharField(widget=forms.HiddenInput, max_length=32, required=False)
    kind = forms.ChoiceField(label=_("机构类型"), choices=Organisation.Kind.choices)
    code = forms.CharField(label=_("机构编码"), max_length=32, help_text=_("大写字母、数字、连字符"))
    name = forms.CharField(label=_("机构名称"), max_length=100)
    province = forms.CharField(label=_("省"), max_length=30)
    city = forms.CharField(label=_("市"), max_length=30)
    county = forms.CharField(label=_("县（区）"), max_length=30)
    township = forms.CharField(label=_("乡镇（街道）"), max_length=30, required=False)
    village = forms.CharField(label=_("村（社区）"), max_length=30, required=False)
    address_detail = forms.CharField(label=_("详细地址"), max_length=120, required=False)
    division_code = forms.CharField(
        label=_("行政区划代码"), max_length=12, required=False, help_text=_("12 位统计用区划代码，可不填")
    )
    phone = forms.CharField(label=_("联系电话"), max_length=20, required=False)

    def __init__(self, *args, parent: Organisation | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = rules.allowed_child_kinds(parent.kind if parent else None)
        labels = dict(Organisation.Kind.choices)
        self.fields["kind"].choices = [(k, labels[k]) for k in allowed]
        if parent is not None:
            self.fields["parent_code"].initial = parent.code
            for field in ("province", "city", "county", "township"):
                value = getattr(parent, field)
                if value:
                    self.fields[field].initial = value


class DepartmentForm(forms.Form):
    code = forms.CharField(label=_("科室编码"), max_length=32)
    name = forms.CharField(label=_("科室名称"), max_length=60)
    kind = forms.ChoiceField(label=_("科室类别"), choices=Department.Kind.choices)
    location = forms.CharField(label=_("位置"), max_length=60, required=False)


class StaffForm(forms.Form):
    name = forms.CharField(label=_("姓名"), max_length=40)
    username = forms.CharField(label=_("登录名"), max_length=150)
    password = forms.CharField(
        label=_("初始密码"),
        max_length=128,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("至少 10 位，不能是常见密码或纯数字"),
    )
    department_code = forms.ChoiceField(label=_("科室"), required=False)
    title = forms.ChoiceField(label=_("专业技术职称"), choices=Staff.Title.choices, initial=Staff.Title.NONE)
    licence_number = forms.CharField(label=_("执业证书编码"), max_length=40, required=False)
    practice_start_date = forms.DateField(
        label=_("执业起始日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, departments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["department_code"].choices = [("", _("（不属于科室）"))] + [
            (d.code, f"{d.name}（{d.code}）") for d in departments
        ]


class RoleForm(forms.Form):
    role = forms.ChoiceField(
        label=_("角色"), choices=[(r, labels.ROLE_LABELS[r]) for r in policy.STAFF_ROLES]
    )
    organisation_code = forms.CharField(label=_("所在机构编码"), max_length=32)


class OrganisationEditForm(forms.Form):
    """Descriptive fields and status; kind, code and position are fixed at creation."""

    name = forms.CharField(label=_("机构名称"), max_length=100)
    province = forms.CharField(label=_("省"), max_length=30)
    city = forms.CharField(label=_("市"), max_length=30)
    county = forms.CharField(label=_("县（区）"), max_length=30)
    township = forms.CharField(label=_("乡镇（街道）"), max_length=30, required=False)
    village = forms.CharField(label=_("村（社区）"), max_length=30, required=False)
    address_detail = forms.CharField(label=_("详细地址"), max_length=120, required=False)
    division_code = forms.CharField(label=_("行政区划代码"), max_length=12, required=False)
    phone = forms.CharField(label=_("联系电话"), max_length=20, required=False)
    status = forms.ChoiceField(label=_("状态"), choices=Organisation.Status.choices)
    reason = forms.CharField(
        label=_("变更原因"), max_length=200, required=False, help_text=_("变更状态时请填写，记入审计日志")
    )

    @classmethod
    def for_organisation(cls, org: Organisation, data=None):
        initial = {field: getattr(org, field) for field in cls.base_fields if field != "reason"}
        return cls(data, initial=initial)
