"""Template for chronic-disease follow-up reminders (chronic.md R7.4), sent by chronic.services.worklists."""

from django.db import migrations

DEFAULTS = [
    {
        "code": "chronic_follow_up_reminder",
        "title": "慢病随访提醒",
        "body": (
            "{{ patient_name }}您好：您的{{ diseases }}随访原定{{ planned_on }}，已过期。"
            "请尽快到{{ org_name }}复诊（测量血压/血糖、调整用药）。"
            "{% if org_phone %}咨询电话：{{ org_phone }}。{% endif %}如已随访请忽略本短信。"
        ),
        "urgent": False,
        "sms_enabled": True,
        "variables": "patient_name 患者姓名; diseases 病种（如 高血压、2型糖尿病）; planned_on 原定随访日期; "
        "org_name 管理机构; org_phone 机构电话",
    },
]


def forwards(apps, schema_editor):
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    for row in DEFAULTS:
        values = dict(row)
        code = values.pop("code")
        MessageTemplate.objects.get_or_create(code=code, defaults=values)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0006_booking_and_exam_templates")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
