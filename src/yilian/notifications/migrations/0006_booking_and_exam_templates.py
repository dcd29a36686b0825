"""Templates for waitlist offers (access.md B-20) and exam/package bookings (access.md E-5, PE).

The callers pass a ready ``title`` and ``body`` (the exam preparation text is assembled per plan
day by ``exams.rules``); hospitals may reword around them in the admin.
"""

from django.db import migrations

DEFAULTS = [
    {
        "code": "waitlist_offer",
        "title": "{{ title|default:'候补成功' }}",
        "body": "{{ body }}",
        "urgent": True,
        "sms_enabled": True,
        "variables": "title 标题; body 正文（科室、日期、支付时限）",
    },
    {
        "code": "exam_booked",
        "title": "{{ title|default:'检查预约成功' }}",
        "body": "{{ body }}",
        "urgent": False,
        "sms_enabled": True,
        "variables": "title 标题; body 正文（检查时间、地点与检查前准备）; patient_name 患者姓名",
    },
    {
        "code": "exam_package_booked",
        "title": "{{ title|default:'体检预约成功' }}",
        "body": "{{ body }}",
        "urgent": False,
        "sms_enabled": True,
        "variables": "title 标题; body 正文（体检日期与注意事项）",
    },
]


def forwards(apps, schema_editor):
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    for row in DEFAULTS:
        values = dict(row)
        code = values.pop("code")
        MessageTemplate.objects.get_or_create(code=code, defaults=values)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0005_encrypt_sms_body")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
