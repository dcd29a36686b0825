"""Ship the default message templates (消息模板); hospitals edit them in the admin.

The SMS signature (短信签名, e.g. 【某县人民医院】) is the gateway's business (it is registered
with the carrier), so bodies carry none. Existing rows are left alone, so a hospital's wording survives re-running migrations.
"""

from django.db import migrations

DEFAULTS = [
    {
        "code": "otp",
        "title": "登录验证码",
        "body": "您的验证码为 {{ code }}，{{ minutes|default:5 }} 分钟内有效。请勿将验证码告诉他人。",
        "urgent": True,
        "sms_enabled": True,
        "variables": "code 验证码; minutes 有效分钟数",
    },
    {
        "code": "generic",
        "title": "{{ title|default:'医联通知' }}",
        "body": "{{ body }}",
        "urgent": False,
        "sms_enabled": True,
        "variables": "title 标题; body 正文",
    },
    {
        "code": "booking_cancelled_by_hospital",
        "title": "停诊通知",
        "body": (
            "{{ patient_name }}您好：因{{ reason|default:'医生临时安排' }}，"
            "{{ org_name }}{{ department_name }}{% if doctor_name %}{{ doctor_name }}医生{% endif %}"
            "{{ session_date }}{{ session_label }}停诊，您的预约（{{ booking_no }}）已取消。"
            "如已缴费将原路退回，请重新预约其他时段。给您带来不便，敬请谅解。"
        ),
        "urgent": True,
        "sms_enabled": True,
        "variables": (
            "patient_name 患者姓名; org_name 机构; department_name 科室; doctor_name 医生; "
            "session_date 日期; session_label 上午/下午; booking_no 预约号; reason 原因"
        ),
    },
    {
        "code": "appointment_reminder",
        "title": "就诊提醒",
        "body": (
            "{{ patient_name }}您好：您已预约{{ when }}{{ org_name }}{{ department_name }}"
            "{% if doctor_name %}{{ doctor_name }}医生{% endif %}，请携带身份证或电子健康卡提前 15 分钟到达"
            "{% if place %}{{ place }}{% endif %}。如不能就诊请提前取消预约。"
        ),
        "urgent": False,
        "sms_enabled": True,
        "variables": (
            "patient_name 患者姓名; when 就诊时间; org_name 机构; department_name 科室; "
            "doctor_name 医生; place 就诊地点"
        ),
    },
]


def forwards(apps, schema_editor):
    MessageTemplate = apps.get_model("notifications", "MessageTemplate")
    for row in DEFAULTS:
        values = dict(row)
        code = values.pop("code")
        MessageTemplate.objects.get_or_create(code=code, defaults=values)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0003_template_variables")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
