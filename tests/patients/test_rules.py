"""patients.rules: identity documents (GB 11643-1999 and permit formats), phones, names, query kinds."""

from __future__ import annotations

from datetime import date

import pytest

from tests import factories as f
from yilian.common import resident_id
from yilian.patients import rules

TODAY = date(2026, 11, 22)


def _code(**kwargs) -> str:
    with pytest.raises(rules.RuleViolation) as caught:
        rules.check_identity(**kwargs, today=TODAY)
    return caught.value.code


def test_valid_resident_id_gives_birth_date_and_sex():
    number = f.valid_id(date(1990, 2, 28), "F")
    identity = rules.check_identity("resident_id", number, today=TODAY)
    assert identity == rules.Identity("resident_id", number, date(1990, 2, 28), "F")
    assert identity.head == number[:6] and identity.last4 == number[-4:]


def test_lower_case_x_and_spaces_are_normalised():
    for seq in range(40):
        number = f.valid_id(date(1985, 1, 1), "M", seq=seq)
        if number.endswith("X"):
            break
    else:
        pytest.skip("no X check character in the sample")
    spaced = number[:6] + " " + number[6:-1] + number[-1].lower()
    assert rules.check_identity("resident_id", spaced, today=TODAY).id_number == number


def test_bad_checksum_is_id_checksum():
    number = f.valid_id()
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    assert _code(id_type="resident_id", id_number=wrong) == "ID_CHECKSUM"


def test_impossible_date_is_id_birth_date():
    first17 = "370687" + "19800230" + "123"
    assert (
        _code(id_type="resident_id", id_number=first17 + resident_id.check_char(first17)) == "ID_BIRTH_DATE"
    )


def test_future_birth_date_is_id_birth_date():
    first17 = "370687" + "20270101" + "123"
    assert (
        _code(id_type="resident_id", id_number=first17 + resident_id.check_char(first17)) == "ID_BIRTH_DATE"
    )


def test_unknown_province_is_id_area():
    first17 = "990687" + "19800101" + "123"
    assert _code(id_type="resident_id", id_number=first17 + resident_id.check_char(first17)) == "ID_AREA"


@pytest.mark.parametrize(
    "number", ["12345", "37068719800101123", "3706871980010112345", "37068719800101123A"]
)
def test_wrong_shape_is_id_format(number):
    assert _code(id_type="resident_id", id_number=number) == "ID_FORMAT"


def test_sex_that_contradicts_the_number_is_refused():
    number = f.valid_id(date(1980, 5, 17), "M")
    with pytest.raises(rules.RuleViolation) as caught:
        rules.check_identity("resident_id", number, sex="F", today=TODAY)
    assert (caught.value.code, caught.value.field) == ("ID_SEX_MISMATCH", "sex")


def test_birth_date_that_contradicts_the_number_is_refused():
    number = f.valid_id(date(1980, 5, 17), "M")
    with pytest.raises(rules.RuleViolation) as caught:
        rules.check_identity("resident_id", number, birth_date=date(1980, 5, 18), today=TODAY)
    assert (caught.value.code, caught.value.field) == ("ID_BIRTH_MISMATCH", "birth_date")


def test_matching_sex_and_birth_date_are_accepted():
    number = f.valid_id(date(1980, 5, 17), "M")
    assert (
        rules.check_identity("resident_id", number, sex="M", birth_date=date(1980, 5, 17), today=TODAY).sex
        == "M"
    )


def test_passport_needs_birth_date_and_sex():
    assert _code(id_type="passport", id_number="E12345678") == "BIRTH_DATE_REQUIRED"
    assert _code(id_type="passport", id_number="E12345678", birth_date=date(1990, 1, 1)) == "SEX_REQUIRED"
    identity = rules.check_identity(
        "passport", "e1234 5678", sex="F", birth_date=date(1990, 1, 1), today=TODAY
    )
    assert identity.id_number == "E12345678" and identity.head == ""


@pytest.mark.parametrize(
    ("id_type", "good", "bad"),
    [
        ("passport", "G1234567", "E12-4567"),
        ("passport", "12345", "1234"),
        ("hk_macao_permit", "H1234567890", "X12345678"),
        ("hk_macao_permit", "M12345678", "H1234567"),
        ("taiwan_permit", "12345678", "1234567"),
        ("foreign_permanent", "USA123456789012", "USA1234567890123"),
        ("foreign_permanent", "911234567890123456", "9112345678901234567"),
        ("birth_cert", "O440123456", "44012345"),
    ],
)
def test_document_formats(id_type, good, bad):
    born = date(2001, 6, 1)
    assert rules.check_identity(id_type, good, sex="M", birth_date=born, today=TODAY).id_number == good
    assert _code(id_type=id_type, id_number=bad, sex="M", birth_date=born) == "ID_FORMAT"


def test_future_birth_date_on_a_passport_is_refused():
    assert (
        _code(id_type="passport", id_number="E12345678", sex="M", birth_date=date(2027, 1, 1))
        == "BIRTH_DATE_INVALID"
    )


def test_unknown_document_type_is_refused():
    assert _code(id_type="driving_licence", id_number="123456") == "ID_TYPE_UNKNOWN"


@pytest.mark.parametrize("raw", ["13800138000", "+86 138 0013 8000", "8613800138000", "199-1234-5678"])
def test_mainland_mobiles_are_normalised(raw):
    assert len(rules.check_mobile(raw)) == 11


@pytest.mark.parametrize("raw", ["12800138000", "1380013800", "138001380001", "0535-1234567", "abc"])
def test_other_numbers_are_not_mobiles(raw):
    with pytest.raises(rules.RuleViolation) as caught:
        rules.check_mobile(raw)
    assert caught.value.code == "PHONE_FORMAT"


def test_contacts_may_give_a_landline():
    assert rules.check_contact_phone("0535-1234567") == "05351234567"


@pytest.mark.parametrize(
    "name",
    ["张三", "欧阳娜娜", "买买提·艾力", "John Smith", "Mary-Jane O'Neil", "李", "王\U00020bb7", "李〇"],
)
def test_accepted_names(name):
    assert rules.check_name(f"  {name} ") == name


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("", "NAME_REQUIRED"),
        ("张" * 51, "NAME_TOO_LONG"),
        ("张3", "NAME_CHARACTERS"),
        ("张三John", "NAME_CHARACTERS"),
        ("<script>", "NAME_CHARACTERS"),
    ],
)
def test_refused_names(name, code):
    with pytest.raises(rules.RuleViolation) as caught:
        rules.check_name(name)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("13800138000", "mobile"),
        ("370687198005170156", "id"),
        ("E12345678", "id"),
        ("zs", "initials"),
        ("ZSF", "initials"),
        ("张", "name"),
        ("张三丰", "name"),
        ("", "empty"),
        ("张3!", "unsupported"),
    ],
)
def test_query_kinds(query, kind):
    assert rules.query_kind(query) == kind


def test_old_15_digit_ids_upgrade_to_18_digits():
    new = f.valid_id(date(1965, 4, 30), "M")
    old = new[:6] + new[8:17]
    assert rules.upgrade_old_resident_id(old) == new
    assert rules.upgrade_old_resident_id(new) is None
