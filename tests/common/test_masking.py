from yilian.common import masking


def test_resident_id_keeps_area_code_and_last_four():
    assert masking.mask_id_number("370882199001011234") == "370882********1234"


def test_short_identifiers_still_hide_the_middle():
    assert masking.mask_id_number("E12345678") == "E1***5678"
    assert masking.mask_id_number("") == ""


def test_phone_keeps_prefix_and_last_four():
    assert masking.mask_phone("13812345678") == "138****5678"


def test_names_are_masked_as_access_q10_says():
    assert masking.mask_name("李四") == "李*"
    assert masking.mask_name("张三丰") == "张*丰"
    assert masking.mask_name("欧阳娜娜") == "欧**娜"
