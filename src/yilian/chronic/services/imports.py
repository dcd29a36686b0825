"""Bulk import of registries and follow-ups from the template (批量导入): issue #4 item 6.

A file (CSV in UTF-8 with or without BOM, or in GB18030/GBK as Chinese Excel saves it; UTF-16
tab-separated "Unicode text"; or Excel ``.xlsx``) is read whole, every row is checked, and then:

* any bad row → nothing is written but an ``ImportBatch`` with status ``rejected`` and *every*
  row error (row number as Excel shows it, the column, a stable code and a translatable message);
* all rows good → every row goes through the area's own services (``registries.enrol``,
  ``followups.record_follow_up``: same rules R2–R5, same audit rows) in one transaction. A
  ``DomainError`` a service still raises rolls everything back and rejects the batch naming that
  row.

Follow-ups are recorded per patient in date order (then file order), so each visit's evaluation
sees the previous one (R5.2/R5.3 "consecutive"). The same file (by SHA-256) is refused once it has
been imported (409); a rejected file may be corrected and sent again.

Decisions (documented in the template's notes sheet too):

* Residents are matched by resident ID number only, through the patients' blind index (never
  stored, logged or echoed back in clear). An unknown resident is a row error: an import never
  creates patients (that needs ``patient.create`` and a real-name check at a desk).
* An optional 姓名 column is checked against the matched patient, to catch a typed-in wrong ID.
* Row numbers are the spreadsheet's: the header is row 1, the first data row row 2. Blank rows
  are skipped; the template's own example row (its example ID number) is skipped too.
* Unknown columns are an error (a misspelt "舒张亚" would otherwise lose data silently), except a
  few harmless bookkeeping columns (序号, 村名, 联系电话 …), which are ignored.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import re
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from yilian.chronic import rules
from yilian.chronic.models import Disease, FollowUp, ImportBatch, Registry
from yilian.common import audit, crypto, policy, resident_id
from yilian.common.errors import DomainError, NotFound, PermissionDenied
from yilian.common.models import AuditEvent
from yilian.common.policy import Actor
from yilian.community.models import Organisation, Staff
from yilian.patients import selectors as patient_selectors

MAX_BYTES = 5 * 1024 * 1024
# Rows per file. The rows go through the per-row services in one synchronous request, which must
# end within the web worker's timeout (60 s). Measured on the shared 2-core development machine
# (load ≈8): registries ≈160 rows/s on SQLite, ≈70 on PostgreSQL; follow-ups ≈45 rows/s on
# SQLite, ≈33 on PostgreSQL (each follow-up is evaluated, planned, rolled up and audited by the
# services, ~22 queries). Checking alone runs at 2,000–6,000 rows/s.
MAX_ROWS = {"registries": 5_000, "follow_ups": 2_000}
MAX_COLUMNS = 60
TEMPLATE_LANGUAGE = "zh-hans"  # headers and allowed values of the template: the file contract
REGISTRIES = ImportBatch.Kind.REGISTRIES
FOLLOW_UPS = ImportBatch.Kind.FOLLOW_UPS
# The template's example row carries this (valid, made-up) ID number and is skipped on import.
EXAMPLE_ID = resident_id.build("370687", date(1958, 3, 14), 999, "M")
EARLIEST = date(1950, 1, 1)


# --- Refusals of a whole file (no batch is written) ------------------------------------------------


class ImportFileTooLarge(DomainError):
    code = "IMPORT_FILE_TOO_LARGE"
    status = 413
    default_message = _("文件过大：每次最多导入 5 MB。请拆分为几个文件分批导入。")


class ImportTooManyRows(DomainError):
    code = "IMPORT_TOO_MANY_ROWS"
    status = 413
    default_message = _("行数过多：每次最多导入 %(n)s 行。请拆分为几个文件分批导入。")

    def __init__(self, limit: int) -> None:
        super().__init__(self.default_message % {"n": limit}, limit=limit)


class ImportFileUnreadable(DomainError):
    code = "IMPORT_FILE_UNREADABLE"
    status = 422
    default_message = _("无法读取该文件：请上传模板格式的 CSV 或 Excel（.xlsx）文件。")


class ImportFileEmpty(DomainError):
    code = "IMPORT_FILE_EMPTY"
    status = 422
    default_message = _("文件中没有数据行：请在模板的表头下方填写数据后再上传。")


class ImportKindUnknown(DomainError):
    code = "IMPORT_KIND_UNKNOWN"
    status = 422
    default_message = _("导入类型只能是专病档案（registries）或随访记录（follow_ups）。")


class ImportAlreadyDone(DomainError):
    """The same file twice would enrol or record twice: refused once imported (SHA-256 of the bytes)."""

    code = "IMPORT_DUPLICATE_FILE"
    status = 409
    default_message = _("该文件已于 %(at)s 导入过（批次 %(batch)s），不能重复导入。")


# --- Row error messages: code → translatable message with %(…)s parameters -------------------------

MESSAGES: dict[str, Any] = {
    "MISSING_COLUMN": _("缺少必填列“%(label)s”。请使用导入模板的表头。"),
    "UNKNOWN_COLUMN": _("无法识别的列“%(header)s”。请使用导入模板的列名（或删除该列）。"),
    "DUPLICATE_COLUMN": _("列“%(header)s”出现了两次。"),
    "REQUIRED": _("“%(label)s”必须填写。"),
    "ID_INVALID": _("身份证号格式或校验位不正确。"),
    "PATIENT_UNKNOWN": _("未找到该身份证号的居民，或不在您的管理范围内。请先在患者管理中建档。"),
    "NAME_MISMATCH": _("姓名与该身份证号登记的姓名不一致，请核对身份证号。"),
    "DATE_INVALID": _("“%(label)s”不是有效日期：%(value)s（请写成 2026-03-05）。"),
    "DATE_IN_FUTURE": _("“%(label)s”不能晚于今天：%(value)s。"),
    "DATE_TOO_EARLY": _("“%(label)s”早于 1950 年，请核对：%(value)s。"),
    "DIAGNOSED_AFTER_REGISTERED": _("确诊日期（%(diagnosed)s）晚于建档日期（%(registered)s）。"),
    "NUMBER_INVALID": _("“%(label)s”不是数字：%(value)s。"),
    "INTEGER_REQUIRED": _("“%(label)s”应为整数：%(value)s。"),
    "CHOICE_INVALID": _("“%(label)s”的值“%(value)s”不在可选范围内：%(allowed)s。"),
    "BOOLEAN_INVALID": _("“%(label)s”只能填“是”或“否”：%(value)s。"),
    "SYMPTOM_UNKNOWN": _("无法识别的症状“%(value)s”。请使用模板“可选值”页中的症状名称。"),
    "ORG_UNKNOWN": _("管理机构编码“%(value)s”不存在或已停用。"),
    "ORG_OUT_OF_SCOPE": _("管理机构“%(value)s”不在您的导入权限范围内。"),
    "DOCTOR_UNKNOWN": _("找不到工号或执业证号为“%(value)s”的在职医生。"),
    "DOCTOR_NOT_AT_ORG": _("责任医生“%(value)s”不在该管理机构或其上级机构工作。"),
    "ALREADY_ENROLLED": _("该居民已在“%(disease)s”建档管理，不能重复建档。"),
    "DUPLICATE_IN_FILE": _("与第 %(other)s 行重复（同一居民、同一病种%(what)s）。"),
    "NOT_ENROLLED": _("该居民未在“%(disease)s”建档或档案已结案，请先导入专病档案。"),
    "NO_ACTIVE_REGISTRY": _("该居民没有在管的专病档案，请先导入专病档案。"),
    "REGISTRY_OUT_OF_SCOPE": _("该居民的“%(disease)s”档案由不在您导入权限范围内的机构管理。"),
    "VISIT_BEFORE_ENROLMENT": _("随访日期（%(visit)s）早于“%(disease)s”的建档日期（%(registered)s）。"),
    "VISIT_EXISTS": _("该居民“%(disease)s”在 %(visit)s 已有随访记录。"),
    "READING_OUT_OF_RANGE": _("“%(label)s”的值 %(value)s 超出可能范围（%(low)s–%(high)s），请核对。"),
    "DIASTOLIC_NOT_BELOW_SYSTOLIC": _("舒张压（%(dbp)s）必须低于收缩压（%(sbp)s），请核对是否填反。"),
    "GLUCOSE_UNIT_SUSPECT": _("“%(label)s”%(value)s 看起来是 mg/dL，请换算为 mmol/L（除以 18）后再填写。"),
    "BP_PAIR_REQUIRED": _("收缩压和舒张压须同时填写。"),
    "READINGS_REQUIRED": _("面对面随访必须填写“%(disease)s”的测量值（%(needed)s）。"),
    "SERVICE_REFUSED": _("%(message)s"),
}


def error_message(error: dict[str, Any]) -> str:
    """The message of a stored row error in the current language (``errors`` keep code + params)."""
    template = MESSAGES.get(error.get("code", ""))
    if template is None:
        return str(error.get("message", ""))
    try:
        return str(template) % {k: str(v) for k, v in (error.get("params") or {}).items()}
    except (KeyError, TypeError, ValueError):
        return str(error.get("message", ""))


@dataclass
class RowError:
    row: int
    column: str  # the canonical column key ("" for the whole row)
    code: str
    params: dict[str, Any] = field(default_factory=dict)
    header: str = ""  # the column's header as written in the file

    def as_dict(self) -> dict[str, Any]:
        params = {k: str(v) for k, v in self.params.items()}
        body = {"row": self.row, "column": self.column, "header": self.header, "code": self.code}
        body["params"] = params
        body["message"] = error_message(body)
        return body


# --- Columns of the template -----------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # the template's header: the file contract, so not translated
    aliases: tuple[str, ...] = ()
    required: bool = False
    note: str = ""


_ID = Column(
    "id_number", "身份证号", ("居民身份证号", "身份证号码", "证件号码", "id_number", "resident_id"), True
)
_NAME = Column("name", "姓名", ("患者姓名", "name"), note="可选；填写时与身份证号登记的姓名核对")

REGISTRY_COLUMNS = (
    _ID,
    _NAME,
    Column("disease", "病种", ("疾病", "慢病类型", "disease"), True),
    Column("registered_on", "建档日期", ("registered_on", "registration_date"), True),
    Column("diagnosed_on", "确诊日期", ("diagnosed_on", "diagnosis_date"), True),
    Column("diagnosis_source", "确诊来源", ("diagnosis_source",), True),
    Column("managing_org_code", "管理机构编码", ("机构编码", "managing_org_code", "org_code"), True),
    Column(
        "responsible_doctor",
        "责任医生工号/执业证号",
        ("责任医生工号", "责任医生执业证号", "责任医生", "responsible_doctor", "doctor"),
        note="可选；系统登录工号或执业证书编码",
    ),
    Column("reminder_consent", "同意短信提醒", ("短信提醒", "reminder_consent"), note="是/否，默认否"),
    Column("prior_cvd", "既往心梗/卒中", ("既往心梗或卒中", "prior_cvd"), note="是/否，默认否"),
)

FOLLOW_UP_COLUMNS = (
    _ID,
    _NAME,
    Column("disease", "病种", ("疾病", "disease"), note="可选；空 = 该居民所有在管病种"),
    Column("visit_on", "随访日期", ("visit_on", "visit_date"), True),
    Column("mode", "随访方式", ("mode",), True),
    Column("sbp", "收缩压", ("收缩压1", "sbp"), note="mmHg"),
    Column("dbp", "舒张压", ("舒张压1", "dbp"), note="mmHg"),
    Column("sbp2", "收缩压2", ("第二次收缩压", "sbp2"), note="mmHg，第二次测量"),
    Column("dbp2", "舒张压2", ("第二次舒张压", "dbp2"), note="mmHg，第二次测量"),
    Column("fpg_mmol", "空腹血糖", ("fpg", "fpg_mmol"), note="mmol/L"),
    Column(
        "glucose_any_mmol", "随机血糖", ("glucose_any", "glucose_any_mmol", "random_glucose"), note="mmol/L"
    ),
    Column("heart_rate", "心率", ("heart_rate", "hr"), note="次/分"),
    Column("temperature_c", "体温", ("temperature", "temperature_c"), note="℃"),
    Column("height_cm", "身高", ("height", "height_cm"), note="cm"),
    Column("weight_kg", "体重", ("weight", "weight_kg"), note="kg"),
    Column("waist_cm", "腰围", ("waist", "waist_cm"), note="cm"),
    Column("symptoms", "症状", ("symptoms",), note="多个用顿号分隔；无症状填“无”或留空"),
    Column("adr", "不良反应", ("药物不良反应", "adr"), note="是/否"),
    Column("adr_uncontrollable", "不良反应难以控制", ("adr_uncontrollable",), note="是/否"),
    Column("complication", "并发症", ("complication",), note="无/新发/加重/新发、加重"),
    Column("pregnant_or_lactating", "妊娠或哺乳期", ("孕期或哺乳期", "pregnant_or_lactating"), note="是/否"),
    Column(
        "unmanageable_other_disease",
        "其他疾病难以处理",
        ("unmanageable_other_disease",),
        note="是/否；存在不能处理的其他疾病",
    ),
    Column("adherence", "服药依从性", ("adherence",), note="规律/间断/不服药"),
    Column("note", "备注", ("note",)),
)
COLUMNS = {REGISTRIES: REGISTRY_COLUMNS, FOLLOW_UPS: FOLLOW_UP_COLUMNS}
IGNORED_HEADERS = {
    "序号",
    "编号",
    "行号",
    "村",
    "村名",
    "村庄",
    "地址",
    "住址",
    "电话",
    "联系电话",
    "性别",
    "出生日期",
    "年龄",
}

DISEASE_ALIASES = {
    "高血压病": rules.HTN,
    "原发性高血压": rules.HTN,
    "糖尿病": rules.T2DM,
    "2型糖尿病": rules.T2DM,
    "ii型糖尿病": rules.T2DM,
    "Ⅱ型糖尿病": rules.T2DM,
    "二型糖尿病": rules.T2DM,
    "冠状动脉粥样硬化性心脏病": rules.CHD,
    "卒中": rules.STROKE,
    "中风": rules.STROKE,
    "慢性阻塞性肺疾病": rules.COPD,
    "copd": rules.COPD,
    "肿瘤": rules.CANCER,
    "癌症": rules.CANCER,
}
SOURCE_ALIASES = {
    "县医院": Registry.DiagnosisSource.COUNTY_HOSPITAL,
    "县级医院": Registry.DiagnosisSource.COUNTY_HOSPITAL,
    "上级医院": Registry.DiagnosisSource.HIGHER_HOSPITAL,
    "乡镇卫生院": Registry.DiagnosisSource.TOWNSHIP,
    "卫生院": Registry.DiagnosisSource.TOWNSHIP,
    "筛查": Registry.DiagnosisSource.SCREENING,
    "外地转入": Registry.DiagnosisSource.TRANSFER_IN,
    "转入": Registry.DiagnosisSource.TRANSFER_IN,
}
MODE_ALIASES = {
    "门诊随访": FollowUp.Mode.CLINIC,
    "诊室": FollowUp.Mode.CLINIC,
    "家庭随访": FollowUp.Mode.HOME,
    "入户": FollowUp.Mode.HOME,
    "上门": FollowUp.Mode.HOME,
    "家庭访视": FollowUp.Mode.HOME,
    "电话随访": FollowUp.Mode.PHONE,
}
ADHERENCE_ALIASES = {"间断服药": "intermittent", "规律服药": "regular", "未服药": "none"}
YES = {"是", "有", "y", "yes", "true", "1", "√", "✓"}
NO = {"否", "无", "没有", "n", "no", "false", "0", ""}
COMPLICATION_VALUES = {"新发": "new", "新发并发症": "new", "加重": "worsened", "原有并发症加重": "worsened"}

INT_FIELDS = ("sbp", "dbp", "sbp2", "dbp2", "heart_rate")
DECIMAL_FIELDS = ("fpg_mmol", "glucose_any_mmol", "temperature_c", "height_cm", "weight_kg", "waist_cm")


def _norm(text: Any) -> str:
    """A header or choice as compared: no spaces/BOM, ASCII brackets, no unit in brackets, lower-case."""
    s = str(text or "").replace("\ufeff", "").strip()
    s = s.replace("（", "(").replace("）", ")").replace("＊", "*")
    s = re.sub(r"\(.*?\)", "", s)
    s = re.sub(r"\s+", "", s).strip("*").lower()
    return s


def _choice_table(extra: dict[str, str], choices: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Accepted spellings → code: the codes, the Chinese labels (the template's language, whatever
    the uploader's), the labels in the uploader's language, and the aliases."""
    choices = list(choices)
    table = {_norm(k): v for k, v in extra.items()}
    for value, label in choices:
        table[_norm(value)] = value
        table[_norm(str(label))] = value
    with translation.override(TEMPLATE_LANGUAGE):
        for value, label in choices:
            table[_norm(str(label))] = value
    return table


# --- Reading a file into rows ---------------------------------------------------------------------


@dataclass
class Table:
    headers: list[str]
    rows: list[tuple[int, list[Any]]]  # (spreadsheet row number, cells)


def _decode(content: bytes) -> str:
    if content.startswith(b"\xef\xbb\xbf"):
        return content[3:].decode("utf-8")
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        return content.decode("utf-16")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("gb18030")  # what Chinese Excel writes for "CSV (逗号分隔)"


def _read_csv(content: bytes, max_rows: int) -> Table:
    try:
        text = _decode(content)
    except UnicodeDecodeError as exc:
        raise ImportFileUnreadable() from exc
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        headers = next(reader, [])
        rows: list[tuple[int, list[Any]]] = []
        for number, cells in enumerate(reader, start=2):
            if any(c.strip() for c in cells):
                rows.append((number, cells))
                if len(rows) > max_rows:
                    raise ImportTooManyRows(max_rows)
    except csv.Error as exc:
        raise ImportFileUnreadable() from exc
    return Table(headers=[str(h) for h in headers], rows=rows)


def _read_xlsx(content: bytes, max_rows: int) -> Table:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise ImportFileUnreadable() from exc
    except Exception as exc:  # openpyxl raises its own InvalidFileException and others on junk
        raise ImportFileUnreadable() from exc
    try:
        sheet = book.worksheets[0]
        rows: list[tuple[int, list[Any]]] = []
        headers: list[str] = []
        for number, cells in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1):
            if number == 1:
                headers = ["" if c is None else str(c) for c in cells]
                continue
            if any(c is not None and str(c).strip() for c in cells):
                rows.append((number, list(cells)))
                if len(rows) > max_rows:
                    raise ImportTooManyRows(max_rows)
    finally:
        book.close()
    return Table(headers=headers, rows=rows)


def read_table(filename: str, content: bytes, max_rows: int = 10_000) -> Table:
    """The rows of an uploaded CSV or .xlsx (the format is told by the content, not the name)."""
    if content.startswith(b"PK\x03\x04"):
        return _read_xlsx(content, max_rows)
    if filename.lower().endswith((".xls", ".xlsx", ".xlsm")) or (
        b"\x00" in content[:512] and not content.startswith((b"\xff\xfe", b"\xfe\xff"))
    ):
        raise ImportFileUnreadable()  # an old binary .xls, or not a table at all
    return _read_csv(content, max_rows)


# --- Parsing cells ----------------------------------------------------------------------------------


class _CellError(Exception):
    def __init__(self, code: str, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(code)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


_DATE_PATTERNS = (
    re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)


def _date(value: Any, label: str, today: date) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value.date()
    elif isinstance(value, date):
        parsed = value
    elif isinstance(value, int | float) and 20000 < value < 80000:  # an Excel serial day number
        parsed = date(1899, 12, 30) + timedelta(days=int(value))
    else:
        text = _text(value)
        if not text:
            return None
        parsed = None
        for pattern in _DATE_PATTERNS:
            m = pattern.match(text)
            if m:
                try:
                    parsed = date(int(m[1]), int(m[2]), int(m[3]))
                except ValueError:
                    parsed = None
                break
        if parsed is None:
            raise _CellError("DATE_INVALID", label=label, value=text[:20])
    if parsed > today:
        raise _CellError("DATE_IN_FUTURE", label=label, value=parsed.isoformat())
    if parsed < EARLIEST:
        raise _CellError("DATE_TOO_EARLY", label=label, value=parsed.isoformat())
    return parsed


def _number(value: Any, label: str, *, integer: bool) -> int | Decimal | None:
    text = _text(value)
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise _CellError("NUMBER_INVALID", label=label, value=text[:20]) from exc
    if not number.is_finite():
        raise _CellError("NUMBER_INVALID", label=label, value=text[:20])
    if integer:
        if number != number.to_integral_value():
            raise _CellError("INTEGER_REQUIRED", label=label, value=text[:20])
        return int(number)
    return number.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _bool(value: Any, label: str) -> bool:
    text = _norm(_text(value))
    if text in YES:
        return True
    if text in NO:
        return False
    raise _CellError("BOOLEAN_INVALID", label=label, value=_text(value)[:20])


def _choice(value: Any, table: dict[str, str], label: str, allowed: str) -> str | None:
    text = _text(value)
    if not text:
        return None
    found = table.get(_norm(text))
    if found is None:
        raise _CellError("CHOICE_INVALID", label=label, value=text[:30], allowed=allowed)
    return found


def _symptoms(value: Any) -> list[str]:
    text = _text(value)
    if not text or _norm(text) in {"无", "无症状", "否"}:
        return []
    by_label = {_norm(v): k for k, v in rules.SYMPTOM_LABELS.items()}
    by_code = {_norm(k): k for k in rules.SYMPTOM_LABELS}
    found: list[str] = []
    for token in re.split(r"[、,，;；/|\n]+", text):
        key = _norm(token)
        if not key:
            continue
        code = by_code.get(key) or by_label.get(key)
        if code is None:
            raise _CellError("SYMPTOM_UNKNOWN", value=token.strip()[:30])
        if code not in found:
            found.append(code)
    return found


# --- Validation ------------------------------------------------------------------------------------


def _disease_table() -> dict[str, str]:
    """Disease codes, labels (in every language the labels are shown in) and aliases → code."""
    return _choice_table(DISEASE_ALIASES, Disease.choices)


def _allowed(choices) -> str:
    """The allowed values as the template lists them (in Chinese, the file's language)."""
    with translation.override(TEMPLATE_LANGUAGE):
        return "、".join(str(label) for _, label in choices)


@dataclass
class _Context:
    actor: Actor
    today: date
    kind: str
    columns: dict[str, Column]
    index: dict[str, int]  # column key → cell position
    headers: dict[str, str]  # column key → header text in the file
    errors: list[RowError] = field(default_factory=list)
    diseases: dict[str, str] = field(default_factory=_disease_table)
    disease_choices: str = field(default_factory=lambda: _allowed(Disease.choices))

    def cell(self, cells: list[Any], key: str) -> Any:
        pos = self.index.get(key)
        if pos is None or pos >= len(cells):
            return None
        return cells[pos]

    def fail(self, row: int, key: str, code: str, **params: Any) -> None:
        self.errors.append(RowError(row, key, code, params, self.headers.get(key, "")))


def _match_headers(kind: str, headers: list[str]) -> tuple[dict[str, int], dict[str, str], list[RowError]]:
    columns = COLUMNS[kind]
    lookup: dict[str, Column] = {}
    for col in columns:
        for name in (col.label, col.key, *col.aliases):
            lookup[_norm(name)] = col
    ignored = {_norm(h) for h in IGNORED_HEADERS}
    index: dict[str, int] = {}
    written: dict[str, str] = {}
    errors: list[RowError] = []
    for pos, header in enumerate(headers):
        key = _norm(header)
        if not key or key in ignored:
            continue
        col = lookup.get(key)
        if col is None:
            errors.append(
                RowError(1, "", "UNKNOWN_COLUMN", {"header": str(header).strip()[:40]}, str(header)[:40])
            )
            continue
        if col.key in index:
            errors.append(
                RowError(
                    1, col.key, "DUPLICATE_COLUMN", {"header": str(header).strip()[:40]}, str(header)[:40]
                )
            )
            continue
        index[col.key] = pos
        written[col.key] = str(header).strip()
    for col in columns:
        if col.required and col.key not in index:
            errors.append(RowError(1, col.key, "MISSING_COLUMN", {"label": col.label}, col.label))
    return index, written, errors


def _import_scope(actor: Actor) -> list[str]:
    return policy.scope_paths(actor, policy.CHRONIC_IMPORT)


def _in_scope(path: str, scope: list[str]) -> bool:
    return any(path.startswith(p) for p in scope)


def _normalised_id(raw: Any, today: date) -> str | None:
    text = _text(raw)
    number = resident_id.normalise(text)
    if re.fullmatch(r"\d{15}", number):
        upgraded = number[:6] + "19" + number[6:]
        number = upgraded + resident_id.check_char(upgraded)
    try:
        return resident_id.parse(number, today=today).number
    except resident_id.ResidentIdError:
        return None


@dataclass
class _Patient:
    id: int
    name: str
    birth_date: date
    home_path: str


def _patients_by_id(actor: Actor, numbers: set[str]) -> dict[str, _Patient]:
    """ID number → patient, through the blind index, over the patients the actor may see.

    The numbers are only hashed (common.crypto.blind_index); nothing is decrypted or logged.
    """
    by_hash = {crypto.blind_index("id", n): n for n in numbers}
    found: dict[str, _Patient] = {}
    hashes = list(by_hash)
    visible = patient_selectors.patients_visible_to(actor, policy.PATIENT_VIEW)
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        rows = visible.filter(id_hash__in=chunk, status="active").values_list(
            "id", "name", "birth_date", "id_hash", "home_org__path"
        )
        for pid, name, birth, id_hash, home_path in rows:
            found[by_hash[id_hash]] = _Patient(pid, name, birth, home_path)
    return found


@dataclass
class RegistryRow:
    row: int
    patient_id: int
    disease: str
    registered_on: date
    diagnosed_on: date
    diagnosis_source: str
    managing_org_id: int
    responsible_doctor_id: int | None
    reminder_consent: bool
    prior_cvd: bool


@dataclass
class FollowUpRow:
    row: int
    patient_id: int
    diseases: list[str] | None
    values: dict[str, Any]
    orgs: tuple[tuple[int, str], ...] = ()  # the managing organisations of the registries visited


def _common_cells(ctx: _Context, number: int, cells: list[Any]) -> tuple[str | None, str | None]:
    """The ID number (normalised) and the disease of a row, reporting their errors."""
    id_number = None
    raw_id = _text(ctx.cell(cells, "id_number"))
    if not raw_id:
        ctx.fail(number, "id_number", "REQUIRED", label=ctx.columns["id_number"].label)
    else:
        id_number = _normalised_id(raw_id, ctx.today)
        if id_number is None:
            ctx.fail(number, "id_number", "ID_INVALID")
    disease = None
    try:
        disease = _choice(ctx.cell(cells, "disease"), ctx.diseases, "病种", ctx.disease_choices)
    except _CellError as exc:
        ctx.fail(number, "disease", exc.code, **exc.params)
    return id_number, disease


def _check_name(ctx: _Context, number: int, cells: list[Any], patient: _Patient) -> None:
    given = _text(ctx.cell(cells, "name"))
    if given and re.sub(r"\s+", "", given) != re.sub(r"\s+", "", patient.name):
        ctx.fail(number, "name", "NAME_MISMATCH")


def _parse(ctx: _Context, number: int, key: str, parse: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return parse(*args, **kwargs)
    except _CellError as exc:
        ctx.fail(number, key, exc.code, **exc.params)
        return None


def _validate_registries(ctx: _Context, table: Table) -> list[RegistryRow]:
    """Every registry row against the template, the importer's scope and the registries (R2.1)."""
    sources = _choice_table(SOURCE_ALIASES, Registry.DiagnosisSource.choices)
    staged: list[tuple[int, list[Any], str | None, str | None]] = []
    for number, cells in table.rows:
        id_number, disease = _common_cells(ctx, number, cells)
        if disease is None and not _text(ctx.cell(cells, "disease")):
            ctx.fail(number, "disease", "REQUIRED", label="病种")
        staged.append((number, cells, id_number, disease))
    patients = _patients_by_id(ctx.actor, {s[2] for s in staged if s[2]})
    codes = {_text(ctx.cell(c, "managing_org_code")) for _, c, _, _ in staged}
    orgs = {
        o["code"]: o
        for o in Organisation.objects.filter(code__in=[c for c in codes if c]).values(
            "id", "code", "path", "status"
        )
    }
    doctor_keys = {_text(ctx.cell(c, "responsible_doctor")) for _, c, _, _ in staged} - {""}
    doctors: dict[str, list[dict]] = defaultdict(list)
    if doctor_keys:
        for s in (
            Staff.objects.filter(is_active=True)
            .filter(**{"licence_number__in": list(doctor_keys)})
            .values("id", "licence_number", "user__username", "organisation__path")
        ):
            doctors[s["licence_number"]].append(s)
        for s in Staff.objects.filter(is_active=True, user__username__in=list(doctor_keys)).values(
            "id", "licence_number", "user__username", "organisation__path"
        ):
            if s not in doctors[s["user__username"]]:
                doctors[s["user__username"]].append(s)
    enrolled = set(
        Registry.objects.filter(
            patient_id__in=[p.id for p in patients.values()], status=Registry.Status.ACTIVE
        ).values_list("patient_id", "disease")
    )
    scope = _import_scope(ctx.actor)
    seen: dict[tuple[int, str], int] = {}
    good: list[RegistryRow] = []
    for number, cells, id_number, disease in staged:
        before = len(ctx.errors)
        patient = patients.get(id_number) if id_number else None
        if patient is not None and not _in_scope(patient.home_path, scope):
            patient = None  # enrolment needs the patient's home organisation in scope too
        if id_number and patient is None:
            ctx.fail(number, "id_number", "PATIENT_UNKNOWN")
        if patient is not None:
            _check_name(ctx, number, cells, patient)
        registered_on = _parse(
            ctx,
            number,
            "registered_on",
            _date,
            ctx.cell(cells, "registered_on"),
            "建档日期",
            ctx.today,
        )
        diagnosed_on = _parse(
            ctx, number, "diagnosed_on", _date, ctx.cell(cells, "diagnosed_on"), "确诊日期", ctx.today
        )
        for key, label, value in (
            ("registered_on", "建档日期", registered_on),
            ("diagnosed_on", "确诊日期", diagnosed_on),
        ):
            if value is None and not _text(ctx.cell(cells, key)):
                ctx.fail(number, key, "REQUIRED", label=label)
        if registered_on and diagnosed_on and diagnosed_on > registered_on:
            ctx.fail(
                number,
                "diagnosed_on",
                "DIAGNOSED_AFTER_REGISTERED",
                diagnosed=diagnosed_on.isoformat(),
                registered=registered_on.isoformat(),
            )
        source = _parse(
            ctx,
            number,
            "diagnosis_source",
            _choice,
            ctx.cell(cells, "diagnosis_source"),
            sources,
            "确诊来源",
            _allowed(Registry.DiagnosisSource.choices),
        )
        if source is None and not _text(ctx.cell(cells, "diagnosis_source")):
            ctx.fail(number, "diagnosis_source", "REQUIRED", label="确诊来源")
        code = _text(ctx.cell(cells, "managing_org_code"))
        org = orgs.get(code)
        if not code:
            ctx.fail(number, "managing_org_code", "REQUIRED", label="管理机构编码")
        elif org is None or org["status"] != Organisation.Status.ACTIVE:
            ctx.fail(number, "managing_org_code", "ORG_UNKNOWN", value=code[:32])
            org = None
        elif not _in_scope(org["path"], scope):
            ctx.fail(number, "managing_org_code", "ORG_OUT_OF_SCOPE", value=code[:32])
            org = None
        doctor_id = None
        doctor_key = _text(ctx.cell(cells, "responsible_doctor"))
        if doctor_key:
            candidates = doctors.get(doctor_key, [])
            if not candidates:
                ctx.fail(number, "responsible_doctor", "DOCTOR_UNKNOWN", value=doctor_key[:40])
            elif org is not None:
                at_org = [d for d in candidates if org["path"].startswith(d["organisation__path"])]
                if not at_org:
                    ctx.fail(number, "responsible_doctor", "DOCTOR_NOT_AT_ORG", value=doctor_key[:40])
                else:
                    doctor_id = at_org[0]["id"]
        consent = _parse(
            ctx,
            number,
            "reminder_consent",
            _bool,
            ctx.cell(cells, "reminder_consent"),
            "同意短信提醒",
        )
        prior = _parse(ctx, number, "prior_cvd", _bool, ctx.cell(cells, "prior_cvd"), "既往心梗/卒中")
        if patient is not None and disease is not None:
            label = Disease(disease).label
            if (patient.id, disease) in enrolled:
                ctx.fail(number, "disease", "ALREADY_ENROLLED", disease=label)
            elif (patient.id, disease) in seen:
                ctx.fail(number, "disease", "DUPLICATE_IN_FILE", other=seen[(patient.id, disease)], what="")
            else:
                seen[(patient.id, disease)] = number
        if (
            len(ctx.errors) == before
            and patient
            and disease
            and org
            and registered_on
            and diagnosed_on
            and source
        ):
            good.append(
                RegistryRow(
                    row=number,
                    patient_id=patient.id,
                    disease=disease,
                    registered_on=registered_on,
                    diagnosed_on=diagnosed_on,
                    diagnosis_source=source,
                    managing_org_id=org["id"],
                    responsible_doctor_id=doctor_id,
                    reminder_consent=bool(consent),
                    prior_cvd=bool(prior),
                )
            )
    return good


_READING_LABELS = {
    "sbp": "收缩压",
    "dbp": "舒张压",
    "sbp2": "收缩压2",
    "dbp2": "舒张压2",
    "fpg_mmol": "空腹血糖",
    "glucose_any_mmol": "随机血糖",
    "heart_rate": "心率",
    "temperature_c": "体温",
    "height_cm": "身高",
    "weight_kg": "体重",
    "waist_cm": "腰围",
}


def _check_readings(ctx: _Context, number: int, values: dict[str, Any]) -> None:
    """Impossible readings, the BP pairs and glucose units, by ``rules.validate_readings`` (RANGES)."""
    for first, second in (("sbp", "dbp"), ("sbp2", "dbp2")):
        if (values.get(first) is None) != (values.get(second) is None):
            ctx.fail(number, first if values.get(first) is None else second, "BP_PAIR_REQUIRED")
    readings = {k: v for k, v in values.items() if k in _READING_LABELS and v is not None}
    for name, problem in rules.validate_readings(**readings):
        label = _READING_LABELS.get(name, name)
        if problem == rules.DBP_NOT_BELOW_SBP:
            sbp_name = "sbp2" if name == "dbp2" else "sbp"
            ctx.fail(
                number,
                name,
                "DIASTOLIC_NOT_BELOW_SYSTOLIC",
                sbp=readings.get(sbp_name),
                dbp=readings.get(name),
            )
        elif problem == rules.GLUCOSE_UNIT_SUSPECT:
            ctx.fail(number, name, "GLUCOSE_UNIT_SUSPECT", label=label, value=readings.get(name))
        else:
            low, high = rules.RANGES.get({"sbp2": "sbp", "dbp2": "dbp"}.get(name, name), ("?", "?"))
            ctx.fail(
                number,
                name,
                "READING_OUT_OF_RANGE",
                label=label,
                value=readings.get(name),
                low=low,
                high=high,
            )


def _validate_follow_ups(ctx: _Context, table: Table) -> list[FollowUpRow]:
    """Every follow-up row: readings (RANGES), dates (not future, not before enrolment), registries."""
    modes = _choice_table(MODE_ALIASES, FollowUp.Mode.choices)
    adherences = _choice_table(ADHERENCE_ALIASES, FollowUp.Adherence.choices)
    staged = []
    for number, cells in table.rows:
        staged.append((number, cells, *_common_cells(ctx, number, cells)))
    patients = _patients_by_id(ctx.actor, {s[2] for s in staged if s[2]})
    registries: dict[int, dict[str, dict]] = defaultdict(dict)
    for r in Registry.objects.filter(
        patient_id__in=[p.id for p in patients.values()], status=Registry.Status.ACTIVE
    ).values("id", "patient_id", "disease", "registered_on", "managing_org_id", "managing_org__path"):
        registries[r["patient_id"]][r["disease"]] = r
    existing = set(
        FollowUp.objects.filter(
            registry_id__in=[r["id"] for d in registries.values() for r in d.values()]
        ).values_list("registry_id", "visit_on")
    )
    scope = _import_scope(ctx.actor)
    seen: dict[tuple[int, str, date], int] = {}
    good: list[FollowUpRow] = []
    for number, cells, id_number, disease in staged:
        before = len(ctx.errors)
        patient = patients.get(id_number) if id_number else None
        if id_number and patient is None:
            ctx.fail(number, "id_number", "PATIENT_UNKNOWN")
        if patient is not None:
            _check_name(ctx, number, cells, patient)
        visit_on = _parse(ctx, number, "visit_on", _date, ctx.cell(cells, "visit_on"), "随访日期", ctx.today)
        if visit_on is None and not _text(ctx.cell(cells, "visit_on")):
            ctx.fail(number, "visit_on", "REQUIRED", label="随访日期")
        mode = _parse(
            ctx,
            number,
            "mode",
            _choice,
            ctx.cell(cells, "mode"),
            modes,
            "随访方式",
            _allowed(FollowUp.Mode.choices),
        )
        if mode is None and not _text(ctx.cell(cells, "mode")):
            ctx.fail(number, "mode", "REQUIRED", label="随访方式")
        values: dict[str, Any] = {}
        for key in INT_FIELDS + DECIMAL_FIELDS:
            label = _READING_LABELS[key]
            values[key] = _parse(
                ctx,
                number,
                key,
                _number,
                ctx.cell(cells, key),
                label,
                integer=key in INT_FIELDS,
            )
        _check_readings(ctx, number, values)
        values["symptoms"] = _parse(ctx, number, "symptoms", _symptoms, ctx.cell(cells, "symptoms")) or []
        for key, label in (
            ("adr", "不良反应"),
            ("adr_uncontrollable", "不良反应难以控制"),
            ("pregnant_or_lactating", "妊娠或哺乳期"),
            ("unmanageable_other_disease", "其他疾病难以处理"),
        ):
            values[key] = bool(_parse(ctx, number, key, _bool, ctx.cell(cells, key), label))
        if values["adr_uncontrollable"]:
            values["adr"] = True
        complication = _norm(_text(ctx.cell(cells, "complication")))
        kinds: set[str] = set()
        for token in re.split(r"[、,，;；/+]+", complication):
            if not token or token in NO:
                continue
            if token not in COMPLICATION_VALUES:
                ctx.fail(
                    number,
                    "complication",
                    "CHOICE_INVALID",
                    label="并发症",
                    value=_text(ctx.cell(cells, "complication"))[:30],
                    allowed="无、新发、加重",
                )
                break
            kinds.add(COMPLICATION_VALUES[token])
        values["new_complication"] = "new" in kinds
        values["complication_worsened"] = "worsened" in kinds
        values["adherence"] = (
            _parse(
                ctx,
                number,
                "adherence",
                _choice,
                ctx.cell(cells, "adherence"),
                adherences,
                "服药依从性",
                _allowed(FollowUp.Adherence.choices),
            )
            or ""
        )
        values["note"] = _text(ctx.cell(cells, "note"))[:500]
        diseases: list[str] | None = [disease] if disease else None
        orgs: set[tuple[int, str]] = set()
        disease_unreadable = disease is None and bool(_text(ctx.cell(cells, "disease")))
        if patient is not None and visit_on is not None and not disease_unreadable:
            active = registries.get(patient.id, {})
            targets = [disease] if disease else sorted(active)
            if disease and disease not in active:
                ctx.fail(number, "disease", "NOT_ENROLLED", disease=Disease(disease).label)
            elif not targets:
                ctx.fail(number, "disease", "NO_ACTIVE_REGISTRY")
            for d in targets:
                reg = active.get(d)
                if reg is None:
                    continue
                label = Disease(d).label
                orgs.add((reg["managing_org_id"], reg["managing_org__path"]))
                if not _in_scope(reg["managing_org__path"], scope):
                    ctx.fail(number, "disease", "REGISTRY_OUT_OF_SCOPE", disease=label)
                elif visit_on < reg["registered_on"]:
                    ctx.fail(
                        number,
                        "visit_on",
                        "VISIT_BEFORE_ENROLMENT",
                        visit=visit_on.isoformat(),
                        disease=label,
                        registered=reg["registered_on"].isoformat(),
                    )
                elif (reg["id"], visit_on) in existing:
                    ctx.fail(number, "visit_on", "VISIT_EXISTS", disease=label, visit=visit_on.isoformat())
                elif (patient.id, d, visit_on) in seen:
                    ctx.fail(
                        number,
                        "visit_on",
                        "DUPLICATE_IN_FILE",
                        other=seen[(patient.id, d, visit_on)],
                        what="、同一随访日期",
                    )
                else:
                    seen[(patient.id, d, visit_on)] = number
                if mode in rules.FACE_TO_FACE:
                    if d == rules.HTN and (values["sbp"] is None or values["dbp"] is None):
                        ctx.fail(number, "sbp", "READINGS_REQUIRED", disease=label, needed="收缩压、舒张压")
                    if d == rules.T2DM and values["fpg_mmol"] is None and values["glucose_any_mmol"] is None:
                        ctx.fail(
                            number,
                            "fpg_mmol",
                            "READINGS_REQUIRED",
                            disease=label,
                            needed="空腹血糖或随机血糖",
                        )
        if len(ctx.errors) == before and patient and visit_on and mode:
            values["visit_on"] = visit_on
            values["mode"] = mode
            good.append(
                FollowUpRow(
                    row=number,
                    patient_id=patient.id,
                    diseases=diseases,
                    values=values,
                    orgs=tuple(sorted(orgs)),
                )
            )
    return good


# --- Writing --------------------------------------------------------------------------------------


class _RowFailed(Exception):
    def __init__(self, error: RowError) -> None:
        self.error = error
        super().__init__(error.code)


def _acting_for_import(actor: Actor, orgs: Iterable[tuple[int, str]] | None = None) -> Actor:
    """The actor the per-row services see: the importer, with ``chronic.manage`` where they import.

    ``chronic.import`` (coordinator, integration) authorises writing the template's rows over the
    importer's own subtree; the services check ``chronic.manage``, which a coordinator does not
    hold. The rows are written by the same user (audit rows name them) through an ``integration``
    assignment at each organisation where the importer holds ``chronic.import`` — or, for a
    follow-up, at the managing organisations of the registries it visits (already checked to be in
    that scope), so that the visit is recorded where the patient is managed, not at the county.
    """
    if orgs is None:
        pairs = [
            (a.org_id, a.org_path)
            for a in actor.assignments
            if policy.CHRONIC_IMPORT in policy.ROLE_PERMISSIONS.get(a.role, ())
        ]
    else:
        pairs = list(orgs)
    assignments = tuple(policy.Assignment(policy.INTEGRATION, org_id, path) for org_id, path in pairs)
    return Actor(  # built afresh: ``request.actor`` may be a lazy proxy, not the dataclass itself
        kind=actor.kind,
        user_id=actor.user_id,
        label=actor.label,
        assignments=assignments,
        api_key_id=actor.api_key_id,
        staff_id=actor.staff_id,
    )


def _service_error(row: int, exc: DomainError) -> RowError:
    column = exc.field or ""
    return RowError(
        row, column, "SERVICE_REFUSED", {"message": str(exc.message), "service_code": exc.code}, column
    )


def _write_registries(actor: Actor, rows: list[RegistryRow], today: date) -> int:
    from yilian.chronic.services import registries as registry_services

    for r in rows:
        try:
            registry_services.enrol(
                actor=actor,
                patient_id=r.patient_id,
                disease=r.disease,
                registered_on=r.registered_on,
                diagnosed_on=r.diagnosed_on,
                diagnosis_source=r.diagnosis_source,
                managing_org_id=r.managing_org_id,
                responsible_doctor_id=r.responsible_doctor_id,
                reminder_consent=r.reminder_consent,
                prior_cvd=r.prior_cvd,
                today=today,
            )
        except DomainError as exc:
            raise _RowFailed(_service_error(r.row, exc)) from exc
    return len(rows)


def _write_follow_ups(actor: Actor, rows: list[FollowUpRow], today: date) -> int:
    """Per patient in date order (then file order), so each evaluation chains on the previous (R5.3).

    No ``client_uuid``: the whole file is one transaction and a file is imported once (SHA-256), so
    the per-visit retry key would only cost a look-up per row.
    """
    from yilian.chronic.services import followups as follow_up_services
    from yilian.chronic.services import rollup

    accepted = {f.name for f in dataclasses.fields(follow_up_services.FollowUpData)}
    count = 0
    touched: dict[tuple[int, int], Registry] = {}  # (registry, year) roll-ups to refresh once, at the end
    for r in sorted(rows, key=lambda r: (r.patient_id, r.values["visit_on"], r.row)):
        data = {k: v for k, v in r.values.items() if k in accepted}
        data.setdefault("medications", [])
        data.setdefault("lifestyle", {})
        data = {k: v for k, v in data.items() if k in accepted}
        try:
            made = follow_up_services.record_follow_up(
                actor=_acting_for_import(actor, r.orgs),
                patient_id=r.patient_id,
                data=follow_up_services.FollowUpData(**data),
                diseases=r.diseases,
                today=today,
                refresh_rollup=False,
            )
        except DomainError as exc:
            raise _RowFailed(_service_error(r.row, exc)) from exc
        count += len(made)
        for follow_up in made:
            touched[(follow_up.registry_id, follow_up.visit_on.year)] = follow_up.registry
    for (_registry_id, year), registry in touched.items():
        rollup.refresh_registry_year(registry=registry, year=year)
    return count


def _importer_org(actor: Actor) -> int:
    for a in actor.assignments:
        if policy.CHRONIC_IMPORT in policy.ROLE_PERMISSIONS.get(a.role, ()):
            return a.org_id
    raise PermissionDenied()


def _lock_file(sha256: str) -> None:
    """Two uploads of one file at once: the second waits, then sees the first (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int(sha256[:15], 16)])


@transaction.atomic
def import_file(
    *, actor: Actor, kind: str, filename: str, content: bytes, today: date | None = None
) -> ImportBatch:
    """Import a registries or follow-ups file, all rows or none (ImportBatch docstring).

    Returns the batch: ``imported`` with ``imported_count`` rows written (follow-ups: one per
    registry visited, R5.7), or ``rejected`` with every row error (nothing else written). Whole-file
    refusals raise: too large (413), unreadable/empty (422), already imported (409).
    """
    if not policy.allows(actor, policy.CHRONIC_IMPORT):
        raise PermissionDenied()
    if kind not in COLUMNS:
        raise ImportKindUnknown()
    if len(content) > MAX_BYTES:
        raise ImportFileTooLarge()
    today = today or timezone.localdate()
    sha256 = hashlib.sha256(content).hexdigest()
    _lock_file(sha256)
    earlier = ImportBatch.objects.filter(sha256=sha256, status=ImportBatch.Status.IMPORTED).first()
    if earlier is not None:
        raise ImportAlreadyDone(
            ImportAlreadyDone.default_message
            % {"at": timezone.localtime(earlier.uploaded_at).strftime("%Y-%m-%d %H:%M"), "batch": earlier.pk},
            batch_id=earlier.pk,
        )
    started = time.perf_counter()
    table = read_table(filename, content, MAX_ROWS[kind])
    id_pos = _id_position(table.headers)
    table.rows = [(n, cells) for n, cells in table.rows if not _is_example(cells, id_pos)]
    batch = ImportBatch(
        kind=kind,
        filename=(filename or "upload")[-200:],
        sha256=sha256,
        organisation_id=_importer_org(actor),
        row_count=len(table.rows),
        uploaded_by_id=actor.user_id,
    )
    index, written, header_errors = _match_headers(kind, table.headers)
    if header_errors:
        return _reject(actor, batch, header_errors)
    if not table.rows:
        raise ImportFileEmpty()
    columns = {c.key: c for c in COLUMNS[kind]}
    ctx = _Context(actor=actor, today=today, kind=kind, columns=columns, index=index, headers=written)
    if kind == REGISTRIES:
        good: list = _validate_registries(ctx, table)
    else:
        good = _validate_follow_ups(ctx, table)
    if ctx.errors:
        return _reject(actor, batch, ctx.errors)
    try:
        with transaction.atomic():
            if kind == REGISTRIES:
                imported = _write_registries(_acting_for_import(actor), good, today)
            else:
                imported = _write_follow_ups(actor, good, today)
            batch.status = ImportBatch.Status.IMPORTED
            batch.imported_count = imported
            batch.save()
            seconds = time.perf_counter() - started
            audit.record(
                actor,
                "chronic.import",
                target=audit.Target("import_batch", batch.pk),
                detail={
                    "kind": kind,
                    "rows": batch.row_count,
                    "imported": imported,
                    "seconds": round(seconds, 3),
                    "sha256": sha256,
                },
            )
    except _RowFailed as exc:
        return _reject(actor, batch, [exc.error])
    return batch


def _id_position(headers: list[str]) -> int | None:
    names = {_norm(n) for n in (_ID.label, _ID.key, *_ID.aliases)}
    for pos, header in enumerate(headers):
        if _norm(header) in names:
            return pos
    return None


def _is_example(cells: list[Any], id_pos: int | None) -> bool:
    """The template's example row (its made-up ID number), left in by the user: skipped."""
    return (
        id_pos is not None
        and id_pos < len(cells)
        and resident_id.normalise(_text(cells[id_pos])) == EXAMPLE_ID
    )


def _reject(actor: Actor, batch: ImportBatch, errors: list[RowError]) -> ImportBatch:
    batch.pk = None
    batch.status = ImportBatch.Status.REJECTED
    batch.imported_count = 0
    order = {c.key: i for i, c in enumerate(COLUMNS[batch.kind])}
    batch.errors = [e.as_dict() for e in sorted(errors, key=lambda e: (e.row, order.get(e.column, -1)))]
    batch.save()
    audit.record(
        actor,
        "chronic.import",
        target=audit.Target("import_batch", batch.pk),
        outcome=AuditEvent.Outcome.REFUSED,
        detail={
            "kind": batch.kind,
            "rows": batch.row_count,
            "errors": len(batch.errors),
            "sha256": batch.sha256,
        },
    )
    return batch


# --- Reads of batches -----------------------------------------------------------------------------


def batches_visible_to(actor: Actor):
    """Import batches of organisations where the actor may import (newest first)."""
    scope = _import_scope(actor)
    if not scope:
        return ImportBatch.objects.none()
    q = Q()
    for path in scope:
        q |= Q(organisation__path__startswith=path)
    return ImportBatch.objects.filter(q).order_by("-uploaded_at", "-id")


def batch_for(actor: Actor, batch_id: int) -> ImportBatch:
    batch = batches_visible_to(actor).filter(pk=batch_id).first()
    if batch is None:
        raise NotFound()
    return batch


# --- The downloadable template --------------------------------------------------------------------

SHEET_TITLES = {REGISTRIES: "专病档案", FOLLOW_UPS: "随访记录"}
TEMPLATE_ROWS_FORMATTED = 2000  # rows whose ID cells are pre-formatted as text (no 3.7E+17)


def _example_row(kind: str, org_code: str) -> list[Any]:
    if kind == REGISTRIES:
        return [
            EXAMPLE_ID,
            "李建国",
            "高血压",
            date(2025, 3, 10),
            date(2025, 3, 1),
            "县级医院确诊",
            org_code,
            "",
            "是",
            "否",
        ]
    return [
        EXAMPLE_ID,
        "李建国",
        "高血压",
        date(2025, 6, 10),
        "门诊",
        138,
        86,
        136,
        84,
        None,
        None,
        72,
        None,
        None,
        68.5,
        88,
        "无",
        "否",
        "否",
        "无",
        "否",
        "否",
        "规律",
        "",
    ]


def template_workbook(actor: Actor, kind: str) -> bytes:
    """The import template (.xlsx): the header row with an example row, the allowed values, the notes.

    The allowed-values sheet lists the organisation codes the actor may import into. The template is
    in Chinese whatever the page language: it is the file contract the import reads.
    """
    with translation.override(TEMPLATE_LANGUAGE):
        return _template_workbook(actor, kind)


def _template_workbook(actor: Actor, kind: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill

    if kind not in COLUMNS:
        raise ImportKindUnknown()
    scope = _import_scope(actor)
    orgs = []
    if scope:
        q = Q()
        for path in scope:
            q |= Q(path__startswith=path)
        orgs = list(
            Organisation.objects.filter(q, status=Organisation.Status.ACTIVE)
            .order_by("path")
            .values_list("code", "name", "kind")[:3000]
        )
    example_org = next(
        (c for c, _n, k in orgs if k == Organisation.Kind.VILLAGE_CLINIC), orgs[0][0] if orgs else ""
    )
    columns = COLUMNS[kind]
    book = Workbook()
    sheet = book.active
    sheet.title = SHEET_TITLES[kind]
    bold = Font(bold=True)
    required_font = Font(bold=True, color="B42318")
    fill = PatternFill("solid", fgColor="E6F4F1")
    for pos, col in enumerate(columns, start=1):
        cell = sheet.cell(row=1, column=pos, value=col.label)
        cell.font = required_font if col.required else bold
        cell.fill = fill
        note = ("必填。" if col.required else "") + col.note
        if note:
            cell.comment = Comment(note, "医联")
        letter = cell.column_letter
        sheet.column_dimensions[letter].width = max(10, len(col.label) * 2 + 4)
        if col.key == "id_number":
            sheet.column_dimensions[letter].width = 22
            for row in range(2, TEMPLATE_ROWS_FORMATTED + 2):
                sheet.cell(row=row, column=pos).number_format = "@"
    for pos, value in enumerate(_example_row(kind, example_org), start=1):
        cell = sheet.cell(row=2, column=pos, value=value)
        if isinstance(value, date):
            cell.number_format = "yyyy-mm-dd"
    sheet.freeze_panes = "A2"

    allowed = book.create_sheet("可选值")
    lists: list[tuple[str, list[str]]] = [("病种", [str(label) for _, label in Disease.choices])]
    if kind == REGISTRIES:
        lists.append(("确诊来源", [str(label) for _, label in Registry.DiagnosisSource.choices]))
    else:
        lists += [
            ("随访方式", [str(label) for _, label in FollowUp.Mode.choices]),
            ("症状", list(rules.SYMPTOM_LABELS.values())),
            ("并发症", ["无", "新发", "加重", "新发、加重"]),
            ("服药依从性", [str(label) for _, label in FollowUp.Adherence.choices]),
        ]
    lists.append(("是/否", ["是", "否"]))
    for pos, (title, values) in enumerate(lists, start=1):
        allowed.cell(row=1, column=pos, value=title).font = bold
        allowed.column_dimensions[allowed.cell(row=1, column=pos).column_letter].width = 24
        for row, value in enumerate(values, start=2):
            allowed.cell(row=row, column=pos, value=value)
    base = len(lists) + 2
    allowed.cell(row=1, column=base, value="管理机构编码").font = bold
    allowed.cell(row=1, column=base + 1, value="机构名称").font = bold
    allowed.column_dimensions[allowed.cell(row=1, column=base).column_letter].width = 18
    allowed.column_dimensions[allowed.cell(row=1, column=base + 1).column_letter].width = 28
    for row, (code, name, _kind) in enumerate(orgs, start=2):
        allowed.cell(row=row, column=base, value=code)
        allowed.cell(row=row, column=base + 1, value=name)

    notes = book.create_sheet("填写说明")
    lines = [
        "每行一条记录；第 1 行为表头，请勿修改列名。红色列名为必填列。",
        "第 2 行为示例（身份证号为虚构号码），导入时自动跳过，可删除。",
        "身份证号按文本填写（18 位）；居民须已在患者管理中建档，导入不会新建患者。",
        "日期写成 2026-03-05（也接受 2026/3/5、2026年3月5日）；不能晚于导入当天。",
        "血压单位 mmHg，血糖单位 mmol/L（mg/dL 请除以 18）。",
        f"每次最多 {MAX_ROWS[kind]} 行、5 MB；可保存为 Excel（.xlsx）或 CSV（UTF-8 或 GBK 编码）。",
        "任何一行有错误时全部不导入，系统会列出每一行的错误；改正后重新上传即可。",
        "同一文件导入成功后不能再次导入。",
    ]
    if kind == FOLLOW_UPS:
        lines += [
            "病种留空时，该次随访记入该居民所有在管病种（同时测血压和血糖时请都填写）。",
            "面对面随访（门诊、家庭）须填写该病种的测量值：高血压填血压，糖尿病填空腹或随机血糖。",
            "同一居民的多次随访按随访日期先后评估（控制满意/不满意、连续两次不满意转诊等）。",
        ]
    notes.column_dimensions["A"].width = 100
    for row, line in enumerate(lines, start=1):
        notes.cell(row=row, column=1, value=line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
