"""The demo county's organisations, departments and staff (县域医共体: 县医院 → 乡镇卫生院 → 村卫生室).

A Shandong-style county modelled on 海阳 (烟台市): one county hospital leading the community (the
root organisation), 15 township health centres, and village clinics under them. Division codes are
12 digits: county 370687, township ``3706871NN000``, village ``3706871NN2VV`` — the layout of the
national statistical division codes (统计用区划代码); the numbers themselves are made up.

Staff hold every role of ``common.policy.STAFF_ROLES`` at the organisation where they work:
village doctors at their clinic, township doctors at their centre, county staff at the hospital.
The system administrator, security administrator and auditor are three different people (三员分立).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth.hashers import make_password

from yilian.accounts.models import User
from yilian.common import policy
from yilian.community.models import Department, Organisation, RoleAssignment, Staff
from yilian.ops.demo import names

PROVINCE = "山东省"
CITY = "烟台市"
COUNTY = "海阳县"
COUNTY_DIVISION = "370687"
HOSPITAL_NAME = "海阳县人民医院"
HOSPITAL_ADDRESS = "海政路178号"
# Where people were first registered: mostly this county, some married in from neighbouring ones.
AREA_CODES = [("370687", 88), ("370682", 4), ("370683", 2), ("370685", 2), ("370686", 2), ("370612", 2)]

TOWNSHIPS = [
    "留格庄镇",
    "盘石店镇",
    "郭城镇",
    "徐家店镇",
    "发城镇",
    "小纪镇",
    "行村镇",
    "辛安镇",
    "二十里店镇",
    "朱吴镇",
    "大阎家镇",
    "东村镇",
    "方圆镇",
    "凤城镇",
    "龙山镇",
]

# County hospital departments: (code, name, kind, location, physicians, nurses).
C, M, A = Department.Kind.CLINICAL, Department.Kind.MEDTECH, Department.Kind.ADMIN
COUNTY_DEPARTMENTS = [
    ("0201", "全科医学科", C, "门诊楼2层", 5, 4),
    ("0301", "呼吸与危重症医学科", C, "内科楼5层", 7, 9),
    ("0302", "消化内科", C, "内科楼6层", 7, 8),
    ("0303", "神经内科", C, "内科楼7层", 7, 9),
    ("0304", "心血管内科", C, "内科楼8层", 8, 10),
    ("0306", "肾内科", C, "内科楼4层", 5, 6),
    ("0307", "内分泌科", C, "内科楼3层", 5, 6),
    ("0401", "普外科", C, "外科楼5层", 7, 9),
    ("0402", "神经外科", C, "外科楼6层", 5, 7),
    ("0403", "骨科", C, "外科楼7层", 7, 9),
    ("0404", "泌尿外科", C, "外科楼4层", 5, 6),
    ("0501", "妇科", C, "妇儿楼3层", 5, 6),
    ("0502", "产科", C, "妇儿楼4层", 5, 8),
    ("0700", "儿科", C, "妇儿楼2层", 6, 8),
    ("1000", "眼科", C, "门诊楼4层", 4, 3),
    ("1100", "耳鼻咽喉科", C, "门诊楼4层", 4, 3),
    ("1200", "口腔科", C, "门诊楼3层", 4, 3),
    ("1300", "皮肤科", C, "门诊楼3层", 3, 2),
    ("2000", "急诊科", C, "急诊楼1层", 7, 10),
    ("2100", "康复医学科", C, "康复楼2层", 4, 5),
    ("5000", "中医科", C, "门诊楼5层", 5, 3),
    ("3000", "检验科", M, "医技楼1层", 3, 0),
    ("3201", "放射科", M, "医技楼1层", 5, 1),
    ("3206", "超声医学科", M, "医技楼2层", 4, 1),
    ("6000", "药剂科", M, "门诊楼1层", 0, 0),
    ("9001", "医务科", A, "行政楼3层", 0, 0),
    ("9002", "护理部", A, "行政楼3层", 0, 0),
    ("9003", "信息科", A, "行政楼4层", 0, 0),
    ("9004", "审计科", A, "行政楼4层", 0, 0),
    ("9005", "医共体管理办公室", A, "行政楼2层", 0, 0),
    ("9006", "客户服务中心", A, "门诊楼1层", 0, 0),
]
TOWNSHIP_DEPARTMENTS = [
    ("01", "全科医疗科", C, "门诊1楼"),
    ("02", "中医科", C, "门诊1楼"),
    ("03", "预防保健科", C, "门诊2楼"),
    ("04", "检验科", M, "门诊2楼"),
    ("05", "药房", M, "门诊1楼"),
]

T = Staff.Title
# (title, share, years of practice range) by profession.
PHYSICIAN_LADDER = [
    (T.CHIEF_PHYSICIAN, 1, (20, 34)),
    (T.ASSOC_CHIEF_PHYSICIAN, 2, (12, 24)),
    (T.ATTENDING_PHYSICIAN, 3, (6, 14)),
    (T.RESIDENT_PHYSICIAN, 3, (1, 6)),
]
NURSE_LADDER = [
    (T.CHIEF_NURSE, 1, (22, 34)),
    (T.ASSOC_CHIEF_NURSE, 1, (14, 26)),
    (T.SUPERVISOR_NURSE, 3, (8, 16)),
    (T.SENIOR_NURSE, 4, (3, 9)),
    (T.NURSE, 4, (0, 4)),
]
PHARMACIST_LADDER = [
    (T.CHIEF_PHARMACIST, 1, (22, 32)),
    (T.ASSOC_CHIEF_PHARMACIST, 2, (12, 24)),
    (T.SUPERVISOR_PHARMACIST, 3, (7, 15)),
    (T.PHARMACIST, 4, (2, 8)),
    (T.ASSISTANT_PHARMACIST, 2, (0, 4)),
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str


# The fixed sign-ins of the demo, one per role (printed by ``yilian demo`` and ``yilian up``).
DEMO_LOGINS = [
    DemoLogin("doctor", policy.DOCTOR),  # county hospital, 心血管内科
    DemoLogin("nurse", policy.NURSE),  # county hospital, 心血管内科
    DemoLogin("pharmacist", policy.PHARMACIST),  # county hospital, 药剂科
    DemoLogin("township", policy.DOCTOR),  # 留格庄镇卫生院
    DemoLogin("village", policy.VILLAGE_DOCTOR),  # the first village clinic of 留格庄镇
    DemoLogin("operator", policy.SERVICE_OPERATOR),  # county hospital, 客户服务中心
    DemoLogin("coordinator", policy.COORDINATOR),  # county hospital, 医共体管理办公室
    DemoLogin("sysadmin", policy.SYSADMIN),  # county hospital, 信息科
    DemoLogin("secadmin", policy.SECADMIN),  # county hospital, 信息科
    DemoLogin("auditor", policy.AUDITOR),  # county hospital, 审计科
]
DEMO_PASSWORD = "Yilian-demo-2026"
DEMO_PATIENT_PHONE = "13800000001"


@dataclass
class Village:
    org: Organisation
    township: Organisation
    weight: float


@dataclass
class County:
    hospital: Organisation
    townships: list[Organisation]
    villages: list[Village]
    staff_count: int = 0
    logins: dict[str, Staff] = field(default_factory=dict)


def _org(code, name, kind, parent, path, township="", village="", division="", detail="", phone=""):
    return Organisation(
        code=code,
        name=name,
        kind=kind,
        parent=parent,
        path=path,
        depth=0 if parent is None else parent.depth + 1,
        province=PROVINCE,
        city=CITY,
        county=COUNTY,
        township=township,
        village=village,
        division_code=division,
        address_detail=detail,
        phone=phone,
    )


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    """``total`` split over ``parts`` unevenly (largest remainder), each part at least 1."""
    weights = [rng.uniform(0.6, 1.4) for _ in range(parts)]
    scale = (total - parts) / sum(weights)
    shares = [w * scale for w in weights]
    counts = [1 + int(s) for s in shares]
    by_remainder = sorted(range(parts), key=lambda i: shares[i] - int(shares[i]), reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def build_organisations(rng: random.Random, *, villages: int) -> County:
    """Create the organisation tree (paths ``0001.``, ``0001.0001.``, …) and departments."""
    hospital = _org(
        "HY-RMYY",
        HOSPITAL_NAME,
        Organisation.Kind.COUNTY_HOSPITAL,
        None,
        "0001.",
        division=COUNTY_DIVISION + "000000",
        detail=HOSPITAL_ADDRESS,
        phone="0535-3212120",
    )
    hospital.save()
    Department.objects.bulk_create(
        Department(organisation=hospital, code=code, name=name, kind=kind, location=loc)
        for code, name, kind, loc, _, _ in COUNTY_DEPARTMENTS
    )
    townships: list[Organisation] = []
    for i, town in enumerate(TOWNSHIPS, start=1):
        division = f"{COUNTY_DIVISION}{100 + i:03d}000"
        townships.append(
            _org(
                f"HY-WSY{i:02d}",
                f"{town}卫生院",
                Organisation.Kind.TOWNSHIP_CENTRE,
                hospital,
                f"{hospital.path}{i:04d}.",
                township=town,
                division=division,
                detail=f"{town[:-1]}驻地中心街{rng.randint(1, 99)}号",
                phone=f"0535-32{rng.randint(10000, 99999)}",
            )
        )
    Organisation.objects.bulk_create(townships)
    Department.objects.bulk_create(
        Department(organisation=t, code=code, name=name, kind=kind, location=loc)
        for t in townships
        for code, name, kind, loc in TOWNSHIP_DEPARTMENTS
    )
    per_township = (
        _split(rng, villages, len(townships))
        if villages >= len(townships)
        else ([1] * villages + [0] * (len(townships) - villages))
    )
    village_names = names.village_names(rng, villages)
    clinics: list[Village] = []
    orgs: list[Organisation] = []
    for t_index, (township, count) in enumerate(zip(townships, per_township, strict=True), start=1):
        for j in range(1, count + 1):
            name = village_names[len(orgs)]
            org = _org(
                f"HY-CWS{t_index:02d}{j:03d}",
                f"{name}卫生室",
                Organisation.Kind.VILLAGE_CLINIC,
                township,
                f"{township.path}{j:04d}.",
                township=township.township,
                village=name,
                division=f"{township.division_code[:9]}{200 + j:03d}",
                detail=names.house_address(rng),
            )
            orgs.append(org)
            clinics.append(Village(org=org, township=township, weight=rng.uniform(0.4, 2.0)))
    Organisation.objects.bulk_create(orgs)
    return County(hospital=hospital, townships=townships, villages=clinics)


@dataclass
class _StaffPlan:
    name: str
    org: Organisation
    department: Department | None
    title: str
    role: str
    licence: str
    started: date
    username: str = ""


class _Licences:
    """Practising-licence numbers in the shapes of the national registers, all distinct."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, title: str, year: int) -> str:
        self.n += 1
        if title in {T.CHIEF_PHYSICIAN, T.ASSOC_CHIEF_PHYSICIAN, T.ATTENDING_PHYSICIAN, T.RESIDENT_PHYSICIAN}:
            return f"110{COUNTY_DIVISION}{self.n:06d}"  # 医师执业证书 (15 digits)
        if title == T.ASSISTANT_PHYSICIAN:
            return f"210{COUNTY_DIVISION}{self.n:06d}"
        if title == T.VILLAGE_DOCTOR:
            return f"{COUNTY_DIVISION}{year}{self.n:05d}"  # 乡村医生执业证书
        if "nurse" in title:
            return f"{year}37{self.n:06d}"  # 护士执业证书 (12 digits)
        if "pharmacist" in title:
            return f"YS37{year}{self.n:06d}"  # 药师 register
        return ""


def _ladder(rng: random.Random, ladder, count: int) -> list[tuple[str, tuple[int, int]]]:
    """Titles for a team of ``count``: one at the top, the rest split by the ladder's shares."""
    if not count:
        return []
    picks: list[tuple[str, tuple[int, int]]] = [(ladder[0][0], ladder[0][2])]
    rest = ladder[1:]
    total = sum(share for _, share, _ in rest)
    exact = [(count - 1) * share / total for _, share, _ in rest]
    counts = [int(x) for x in exact]
    order = sorted(range(len(rest)), key=lambda i: (exact[i] - counts[i], rng.random()), reverse=True)
    for i in order[: count - 1 - sum(counts)]:
        counts[i] += 1
    for (title, _, years), n in zip(rest, counts, strict=True):
        picks.extend([(title, years)] * n)
    return picks


def build_staff(rng: random.Random, county: County, *, as_of: date, password: str) -> County:
    """Create staff, their users and role assignments; fixed demo sign-ins get ``password``."""
    licence = _Licences()
    plans: list[_StaffPlan] = []

    def person(org, dept, title, role, years: tuple[int, int], *, sex: str | None = None) -> _StaffPlan:
        practising = rng.randint(*years)
        started = date(as_of.year - 1 - practising, rng.choice([7, 8, 9]), 1)  # graduates start in summer
        birth_year = started.year - rng.randint(23, 27)
        sex = sex or ("F" if "nurse" in title or rng.random() < 0.45 else "M")
        plan = _StaffPlan(
            name=names.full_name(rng, sex, birth_year),
            org=org,
            department=dept,
            title=title,
            role=role,
            licence=licence(title, started.year),
            started=started,
        )
        plans.append(plan)
        return plan

    hospital = county.hospital
    depts = {d.name: d for d in Department.objects.filter(organisation=hospital)}
    fixed: dict[str, _StaffPlan] = {}
    for _, dname, _kind, _, physicians, nurses in COUNTY_DEPARTMENTS:
        dept = depts[dname]
        for title, years in _ladder(rng, PHYSICIAN_LADDER, physicians):
            p = person(hospital, dept, title, policy.DOCTOR, years)
            if dname == "心血管内科" and title == T.ATTENDING_PHYSICIAN and "doctor" not in fixed:
                fixed["doctor"] = p
        for title, years in _ladder(rng, NURSE_LADDER, nurses):
            p = person(hospital, dept, title, policy.NURSE, years, sex="F" if rng.random() < 0.95 else "M")
            if dname == "心血管内科" and title == T.SENIOR_NURSE and "nurse" not in fixed:
                fixed["nurse"] = p
    if "doctor" not in fixed:  # a small ladder may lack the title: the first cardiologist serves
        fixed["doctor"] = next(
            p for p in plans if p.department == depts["心血管内科"] and p.role == policy.DOCTOR
        )
    if "nurse" not in fixed:
        fixed["nurse"] = next(
            p for p in plans if p.department == depts["心血管内科"] and p.role == policy.NURSE
        )
    for title, years in _ladder(rng, PHARMACIST_LADDER, 12):
        p = person(hospital, depts["药剂科"], title, policy.PHARMACIST, years)
        if title == T.SUPERVISOR_PHARMACIST and "pharmacist" not in fixed:
            fixed["pharmacist"] = p
    fixed.setdefault("pharmacist", next(p for p in plans if p.role == policy.PHARMACIST))
    for i in range(4):
        p = person(hospital, depts["客户服务中心"], T.NONE, policy.SERVICE_OPERATOR, (0, 8))
        if i == 0:
            fixed["operator"] = p
    fixed["coordinator"] = person(
        hospital, depts["医共体管理办公室"], T.ASSOC_CHIEF_PHYSICIAN, policy.COORDINATOR, (14, 24)
    )
    person(hospital, depts["医共体管理办公室"], T.NONE, policy.COORDINATOR, (2, 10))
    fixed["sysadmin"] = person(hospital, depts["信息科"], T.NONE, policy.SYSADMIN, (5, 15))
    fixed["secadmin"] = person(hospital, depts["信息科"], T.NONE, policy.SECADMIN, (5, 15))
    fixed["auditor"] = person(hospital, depts["审计科"], T.NONE, policy.AUDITOR, (5, 15))

    town_depts: dict[int, dict[str, Department]] = {}
    for d in Department.objects.filter(organisation__in=county.townships):
        town_depts.setdefault(d.organisation_id, {})[d.code] = d
    for township in county.townships:
        td = town_depts[township.pk]
        team = [(T.ASSOC_CHIEF_PHYSICIAN, (12, 24))] if rng.random() < 0.4 else []
        team += [(T.ATTENDING_PHYSICIAN, (6, 14))] * rng.randint(1, 2)
        team += [(T.RESIDENT_PHYSICIAN, (1, 6))] * rng.randint(1, 2)
        team += [(T.ASSISTANT_PHYSICIAN, (1, 10))] * rng.randint(0, 1)
        for title, years in team:
            dept = td["01"] if rng.random() < 0.7 else rng.choice([td["02"], td["03"]])
            p = person(township, dept, title, policy.DOCTOR, years)
            if township is county.townships[0] and title == T.ATTENDING_PHYSICIAN and "township" not in fixed:
                p.department = td["01"]
                fixed["township"] = p
        for title, years in _ladder(rng, NURSE_LADDER[2:], rng.randint(2, 4)):
            person(township, td["01"], title, policy.NURSE, years, sex="F")
        title, _, years = rng.choice(PHARMACIST_LADDER[2:4])
        person(township, td["05"], title, policy.PHARMACIST, years)
    for v in county.villages:
        for k in range(1 if rng.random() < 0.55 else 2):
            title = T.VILLAGE_DOCTOR if rng.random() < 0.8 else T.ASSISTANT_PHYSICIAN
            p = person(
                v.org, None, title, policy.VILLAGE_DOCTOR, (1, 40), sex="M" if rng.random() < 0.7 else "F"
            )
            if v is county.villages[0] and k == 0:
                fixed["village"] = p
    for username, plan in fixed.items():
        plan.username = username

    # One real Argon2 hash shared by the fixed sign-ins: the demo password is printed for all to
    # see, so separate salts would protect nothing and cost a second of CPU each.
    demo_hash = make_password(password)
    hashed = dict.fromkeys(fixed, demo_hash)
    users = [
        User(
            username=p.username or f"hy{i:05d}",
            kind=User.Kind.STAFF,
            password=hashed.get(p.username) or make_password(None),
            first_name=p.name[1:],
            last_name=p.name[:1],
        )
        for i, p in enumerate(plans, start=1)
    ]
    User.objects.bulk_create(users, batch_size=1000)
    staff = [
        Staff(
            user=u,
            name=p.name,
            organisation=p.org,
            department=p.department,
            title=p.title,
            licence_number=p.licence,
            practice_start_date=p.started,
        )
        for u, p in zip(users, plans, strict=True)
    ]
    Staff.objects.bulk_create(staff, batch_size=1000)
    RoleAssignment.objects.bulk_create(
        (RoleAssignment(staff=s, role=p.role, organisation=p.org) for s, p in zip(staff, plans, strict=True)),
        batch_size=1000,
    )
    county.staff_count = len(staff)
    county.logins = {p.username: s for s, p in zip(staff, plans, strict=True) if p.username}
    return county
