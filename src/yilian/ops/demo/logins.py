"""The demo sign-ins table printed by ``yilian demo`` and ``yilian up``."""

from __future__ import annotations

from yilian.common import labels
from yilian.community.models import Staff
from yilian.ops.demo.county import DEMO_LOGINS, DEMO_PASSWORD, DEMO_PATIENT_PHONE


def _width(text: str) -> int:
    return sum(2 if ord(c) > 0x2E80 else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def logins_table(password: str | None = DEMO_PASSWORD) -> str:
    """The fixed demo sign-ins that exist in the database, with role, organisation and title."""
    wanted = [login.username for login in DEMO_LOGINS]
    staff = {
        s.user.username: s
        for s in Staff.objects.select_related("user", "organisation", "department").filter(
            user__username__in=wanted
        )
    }
    if not staff:
        return ""
    rows = [("用户名 username", "角色 role", "机构 / 科室 organisation", "职称 title")]
    for login in DEMO_LOGINS:
        s = staff.get(login.username)
        if s is None:
            continue
        where = s.organisation.name + (f" {s.department.name}" if s.department else "")
        title = s.get_title_display() if s.title != Staff.Title.NONE else "—"
        rows.append(
            (
                login.username,
                labels.role_label(login.role),
                f"{where}（{s.name}）",
                str(title),
            )
        )
    widths = [max(_width(r[i]) for r in rows) for i in range(4)]
    lines = ["Demo sign-ins 演示账号 (staff: /accounts/login/):", ""]
    for i, row in enumerate(rows):
        lines.append("  " + "  ".join(_pad(cell, widths[k]) for k, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    lines.append("")
    if password:
        lines.append(f"  Password for every demo sign-in 统一演示密码: {password}")
    lines.append(
        f"  Patient phone sign-in 患者手机号登录 (/accounts/patient/login/): {DEMO_PATIENT_PHONE} — a family of 3; "
        "`yilian up` prints the SMS code on its console (demo mode)."
    )
    return "\n".join(lines) + "\n"
