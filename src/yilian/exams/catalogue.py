"""Reference data shipped with the exam centre: a county hospital's exam catalogue (E-4 defaults as
data), its devices and rooms, and physical-exam packages (PE-1). Loaded by ``yilian exams_seed``.

The preparation flags follow common clinical convention (access.md E-4: no source in the corpus);
every hospital edits them in the admin.
"""

from __future__ import annotations

from datetime import date, time, timedelta

from django.db import transaction

from yilian.community.models import Organisation
from yilian.exams import errors, services
from yilian.exams.models import ExamPackage, ExamResource, ExamType, PackageItem

AM = (time(8, 0), time(12, 0))
PM = (time(14, 0), time(17, 30))

# code, name, modality, minutes, flags, preparation
EXAM_TYPES = [
    (
        "US-ABD",
        "腹部超声（肝胆胰脾）",
        "US",
        15,
        {"requires_fasting": True, "gi_contrast_sensitive": True},
        "检查前8小时禁食，可少量饮水。",
    ),
    ("US-PEL", "盆腔超声（经腹）", "US", 15, {}, "检查前1小时饮水500～800毫升并憋尿，膀胱充盈后检查。"),
    ("US-THY", "甲状腺超声", "US", 10, {}, ""),
    ("US-HEART", "心脏彩超", "US", 20, {}, ""),
    (
        "GI-BA",
        "上消化道钡餐造影",
        "RF",
        30,
        {"requires_fasting": True, "breaks_fast": True, "gi_contrast": True},
        "检查前一晚22点后禁食禁水；检查后多饮水，2～3天内大便发白属正常。",
    ),
    (
        "ES-GAS",
        "胃镜（无痛）",
        "ES",
        30,
        {"requires_fasting": True, "sedation": True, "recovery_minutes": 60},
        "检查前8小时禁食、4小时禁水；有活动假牙请取下；须家属陪同。",
    ),
    (
        "ES-COL",
        "肠镜（无痛）",
        "ES",
        45,
        {"requires_fasting": True, "sedation": True, "recovery_minutes": 60},
        "检查前一天进食流质，按医嘱服用泻药清洁肠道，直至排出清水样便。",
    ),
    ("CT-HEAD", "头颅CT平扫", "CT", 10, {}, "请取下发夹、耳环等金属物品。"),
    ("CT-CHEST", "胸部CT平扫", "CT", 10, {}, "请取下项链、带金属的内衣。"),
    (
        "CT-ABD-C",
        "上腹部CT增强",
        "CT",
        20,
        {"requires_fasting": True, "iodinated_contrast": True, "gi_contrast_sensitive": True},
        "检查前4小时禁食；近期做过钡餐者须待钡剂排空后再检查；请带肾功能化验单。",
    ),
    (
        "MR-HEAD",
        "头颅磁共振",
        "MR",
        30,
        {},
        "体内有心脏起搏器、金属植入物者须提前告知医生；勿携带手机、银行卡等金属物品。",
    ),
    ("MR-LS", "腰椎磁共振", "MR", 30, {}, "勿携带金属物品；检查约20分钟，请保持不动。"),
    ("DR-CHEST", "胸部正侧位片（DR）", "DR", 5, {}, "请取下项链及带金属的衣物。"),
    ("ECG-12", "十二导联心电图", "ECG", 10, {}, "检查前安静休息5分钟，不要剧烈活动。"),
    (
        "LAB-FBG",
        "空腹血糖及血脂",
        "LAB",
        5,
        {"requires_fasting": True},
        "检查前一晚22点后禁食，抽血前不要吃早餐。",
    ),
    (
        "LAB-OGTT",
        "口服葡萄糖耐量试验",
        "LAB",
        150,
        {"requires_fasting": True, "breaks_fast": True},
        "检查前空腹8～10小时；试验期间不吸烟、不进食，静坐等待分次抽血。",
    ),
]
# ordering constraints (must_precede): the first must come before the second on the same day.
MUST_PRECEDE = [("US-ABD", "GI-BA"), ("US-ABD", "ES-GAS"), ("LAB-FBG", "LAB-OGTT")]

# code, name, modality, site, location, segment minutes, capacity, exam codes
RESOURCES = [
    ("CT1", "CT 1号机", "CT", "医技楼", "一楼东侧CT室", 30, 4, ["CT-HEAD", "CT-CHEST", "CT-ABD-C"]),
    ("MR1", "磁共振 1号机", "MR", "医技楼", "一楼西侧磁共振室", 30, 1, ["MR-HEAD", "MR-LS"]),
    ("DR1", "DR 摄片室", "DR", "门诊楼", "二楼放射科", 30, 6, ["DR-CHEST"]),
    ("US1", "超声 1诊室", "US", "门诊楼", "三楼超声科", 30, 2, ["US-ABD", "US-PEL", "US-THY"]),
    ("US2", "超声 2诊室（心超）", "US", "门诊楼", "三楼超声科", 30, 1, ["US-HEART", "US-ABD"]),
    ("RF1", "胃肠造影室", "RF", "医技楼", "一楼放射科", 30, 1, ["GI-BA"]),
    ("ES1", "内镜中心 胃镜室", "ES", "医技楼", "三楼内镜中心", 30, 2, ["ES-GAS"]),
    ("ES2", "内镜中心 肠镜室", "ES", "医技楼", "三楼内镜中心", 60, 1, ["ES-COL"]),
    ("ECG1", "心电图室", "ECG", "门诊楼", "二楼功能检查科", 30, 4, ["ECG-12"]),
    ("LAB1", "门诊抽血处", "LAB", "门诊楼", "一楼检验科", 30, 10, ["LAB-FBG", "LAB-OGTT"]),
]

# code, name, price, capacity, description, items: (name, sex, min_age, max_age, fasting)
PACKAGES = [
    (
        "PE-BASIC",
        "基础体检套餐",
        "299.00",
        40,
        "一般检查、血常规、肝肾功能、心电图、胸片、腹部超声",
        [
            ("一般检查（身高体重血压）", "", None, None, False),
            ("血常规", "", None, None, False),
            ("肝功能、肾功能、空腹血糖", "", None, None, True),
            ("十二导联心电图", "", None, None, False),
            ("胸部正侧位片（DR）", "", None, None, False),
            ("腹部超声", "", None, None, True),
        ],
    ),
    (
        "PE-F",
        "女性体检套餐",
        "699.00",
        20,
        "基础项目＋妇科检查、乳腺超声、宫颈癌筛查",
        [
            ("一般检查（身高体重血压）", "", None, None, False),
            ("肝功能、肾功能、空腹血糖", "", None, None, True),
            ("腹部超声", "", None, None, True),
            ("妇科检查", "F", 18, None, False),
            ("乳腺超声", "F", None, None, False),
            ("宫颈癌筛查（TCT＋HPV）", "F", 21, 65, False),
        ],
    ),
    (
        "PE-M50",
        "中老年男性体检套餐",
        "899.00",
        20,
        "基础项目＋前列腺超声、肿瘤标志物、颈动脉超声、胸部CT",
        [
            ("一般检查（身高体重血压）", "", None, None, False),
            ("肝功能、肾功能、空腹血糖、血脂", "", None, None, True),
            ("前列腺超声、PSA", "M", 45, None, False),
            ("颈动脉超声", "", 40, None, False),
            ("胸部CT平扫", "", 40, None, False),
        ],
    ),
    (
        "PE-ELDER",
        "65岁以上老年人健康体检（免费）",
        "0.00",
        60,
        "国家基本公共卫生服务项目",
        [
            ("一般检查及生活方式评估", "", 65, None, False),
            ("血常规、尿常规、肝肾功能、血脂、空腹血糖", "", 65, None, True),
            ("心电图、腹部超声", "", 65, None, True),
        ],
    ),
]
PACKAGE_PREPARATION = "体检前3天清淡饮食、勿饮酒；体检当天早晨空腹（可少量饮水），先做抽血和腹部超声再进食。"


@transaction.atomic
def seed(
    *, organisation: Organisation | None = None, days: int = 14, start: date | None = None
) -> dict[str, int]:
    """Load the catalogue, the resources (at the county hospital) and the packages, and open every
    resource's AM/PM segments on working days (Mon–Sat) for ``days`` days. Idempotent."""
    organisation = (
        organisation or Organisation.objects.filter(kind="county_hospital").order_by("path").first()
    )
    if organisation is None:
        return {"exam_types": 0, "resources": 0, "packages": 0, "places": 0}
    types = {}
    for code, name, modality, minutes, flags, prep in EXAM_TYPES:
        types[code], _created = ExamType.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "modality": modality,
                "duration_minutes": minutes,
                "preparation": prep,
                **flags,
            },
        )
    for first, second in MUST_PRECEDE:
        types[first].must_precede.add(types[second])
    resources = []
    for code, name, modality, site, location, minutes, capacity, codes in RESOURCES:
        resource, _created = ExamResource.objects.update_or_create(
            organisation=organisation,
            code=code,
            defaults={
                "name": name,
                "modality": modality,
                "site": site,
                "location": location,
                "segment_minutes": minutes,
                "capacity_per_segment": capacity,
            },
        )
        resource.exam_types.set([types[c] for c in codes])
        resources.append(resource)
    for code, name, price, capacity, description, items in PACKAGES:
        package, created = ExamPackage.objects.update_or_create(
            code=code,
            defaults={
                "organisation": organisation,
                "name": name,
                "price": price,
                "daily_capacity": capacity,
                "description": description,
                "preparation": PACKAGE_PREPARATION,
            },
        )
        if created:
            PackageItem.objects.bulk_create(
                PackageItem(package=package, name=n, sex=sex, min_age=lo, max_age=hi, requires_fasting=fast)
                for n, sex, lo, hi, fast in items
            )
    from django.utils import timezone

    first_day = start or timezone.localdate()
    places = 0
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        if day.weekday() == 6:
            continue
        for resource in resources:
            periods = [AM] if day.weekday() == 5 else [AM, PM]
            places += services.seed_segments(resource=resource, service_date=day, periods=periods)
    return {
        "exam_types": len(types),
        "resources": len(resources),
        "packages": len(PACKAGES),
        "places": places,
    }


# Typical order sets a county hospital's doctors send to the centre (for the demo).
DEMO_ORDER_SETS = [
    ["US-ABD", "GI-BA"],
    ["US-ABD", "ES-GAS", "LAB-FBG"],
    ["CT-HEAD", "ECG-12"],
    ["CT-CHEST", "DR-CHEST"],
    ["MR-LS"],
    ["US-THY", "US-HEART", "ECG-12"],
    ["LAB-FBG", "LAB-OGTT"],
    ["CT-ABD-C", "US-ABD"],
    ["ES-COL", "ES-GAS"],
]


def demo_activity(*, orderer, desk, patients, rng, booked_share: float = 0.6) -> dict[str, int]:
    """Demo data for the centre: paid orders placed by ``orderer`` (an Actor allowed to order, e.g. a
    demo import acting as an integrating system) for ``patients``, of which ``booked_share`` are
    booked by ``desk`` (an Actor allowed to book) with the planner, so that the calendar shows a
    realistic occupancy and the work list has patients."""
    doctor_actor, desk_actor = orderer, desk
    types = {t.code: t for t in ExamType.objects.filter(is_active=True)}
    orders = booked = 0
    for patient in patients:
        for code in rng.choice(DEMO_ORDER_SETS):
            if code in types:
                services.place_order(
                    actor=doctor_actor, patient=patient, exam_type=types[code], paid_or_covered=True
                )
                orders += 1
        if rng.random() < booked_share:
            proposal = services.propose_plan(actor=desk_actor, patient=patient)
            choices = services.choices_from(proposal.plan)
            if choices:
                try:
                    booked += len(services.book_plan(actor=desk_actor, patient=patient, plan=choices))
                except errors.SlotUnavailable:
                    continue
    return {"orders": orders, "appointments": booked}
