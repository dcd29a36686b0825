"""Names for the demo county: people, villages, phone numbers. Pure: no Django, no database.

Everything draws from a ``random.Random`` passed in, so one seed always gives the same county.

* Surnames follow the national frequency ranking (王 李 张 刘 陈 杨 黄 赵 吴 周 …, the 2020 household
  registration figures, rounded), with the Jiaodong peninsula's own common surnames (于 姜 孙 曲 隋
  修 宫 衣 …) weighted up, as in a county of Yantai.
* Given names are one or two characters and follow the fashion of the decade of birth: 桂兰 and
  建国 for the elderly, 丽 and 伟 for the middle-aged, 浩然 and 梓涵 for children.
* Village names follow the patterns of the peninsula: 王家庄, 于家夼, 孙家泊, 前石河, 东河头.
"""

from __future__ import annotations

import random
from itertools import accumulate


def _words(text: str) -> list[str]:
    return text.split()


# (surname, weight in per mille) — national ranking, Jiaodong surnames weighted up.
_SURNAMES = [
    ("王", 82),
    ("李", 68),
    ("张", 72),
    ("刘", 60),
    ("陈", 30),
    ("杨", 28),
    ("黄", 12),
    ("赵", 22),
    ("吴", 12),
    ("周", 14),
    ("徐", 16),
    ("孙", 38),
    ("马", 12),
    ("朱", 10),
    ("胡", 8),
    ("郭", 11),
    ("何", 6),
    ("高", 14),
    ("林", 8),
    ("罗", 5),
    ("郑", 7),
    ("梁", 6),
    ("谢", 5),
    ("宋", 16),
    ("唐", 5),
    ("许", 7),
    ("韩", 9),
    ("冯", 7),
    ("邓", 4),
    ("曹", 7),
    ("彭", 3),
    ("曾", 2),
    ("肖", 4),
    ("田", 6),
    ("董", 8),
    ("袁", 4),
    ("潘", 4),
    ("于", 40),
    ("蒋", 4),
    ("蔡", 3),
    ("余", 2),
    ("杜", 5),
    ("叶", 3),
    ("程", 5),
    ("苏", 5),
    ("魏", 6),
    ("吕", 6),
    ("丁", 7),
    ("任", 5),
    ("沈", 3),
    ("姚", 4),
    ("卢", 4),
    ("姜", 30),
    ("崔", 7),
    ("钟", 2),
    ("谭", 2),
    ("陆", 3),
    ("汪", 2),
    ("范", 5),
    ("金", 4),
    ("石", 5),
    ("廖", 1),
    ("贾", 5),
    ("夏", 3),
    ("付", 4),
    ("方", 3),
    ("白", 4),
    ("邹", 2),
    ("孟", 6),
    ("秦", 4),
    ("邱", 3),
    ("江", 3),
    ("尹", 4),
    ("薛", 4),
    ("闫", 4),
    ("段", 3),
    ("侯", 5),
    ("史", 4),
    ("陶", 2),
    ("贺", 3),
    ("顾", 2),
    ("毛", 3),
    ("郝", 4),
    ("邵", 3),
    ("万", 2),
    ("钱", 2),
    ("武", 4),
    ("戴", 2),
    ("孔", 3),
    ("曲", 14),
    ("隋", 10),
    ("修", 8),
    ("宫", 8),
    ("衣", 6),
    ("纪", 8),
    ("辛", 6),
    ("鞠", 6),
    ("栾", 5),
    ("初", 5),
    ("牟", 5),
    ("迟", 5),
    ("矫", 3),
    ("战", 3),
    ("慕", 2),
    ("欧阳", 1),
    ("司马", 1),
]
SURNAMES = [s for s, _ in _SURNAMES]
_SURNAME_CUM = list(accumulate(w for _, w in _SURNAMES))

# Given names by generation and sex: whole names, plus characters to compose from.
_GIVEN = {
    ("old", "M"): {
        "whole": _words(
            "德胜 建国 国庆 福山 志刚 振华 宝山 树林 玉山 长海 永福 洪涛 文 明 德 福 贵 林 山 成 "
            "振海 玉林 树森 世昌 汝华 立本 克勤 洪福 同春 学礼 希贤 德顺 有才 来福 春生 秋生 金山 连生"
        ),
        "first": "德福振玉树永世汝克洪学希有春秋金连长宝国志文立同",
        "second": "胜山华林海福昌本勤涛礼贤顺才生成明贵田江森祥富堂",
    },
    ("old", "F"): {
        "whole": _words(
            "秀英 桂兰 玉兰 秀兰 桂英 凤英 淑珍 玉珍 秀珍 翠花 春梅 兰英 素芳 金凤 芳 英 兰 珍 "
            "桂芳 玉芝 秀芝 凤兰 淑兰 淑英 桂香 玉香 素英 秀云 桂荣 玉荣 爱莲 月英 秀花 桂珍"
        ),
        "first": "秀桂玉凤淑翠春兰素金爱月美彩银",
        "second": "英兰珍花梅芳凤芝香云荣莲琴娥霞",
    },
    ("mid", "M"): {
        "whole": _words(
            "建华 建军 志强 国华 卫东 永强 海涛 军 勇 伟 强 斌 刚 涛 明 华 建平 立新 红军 学军 "
            "建国 海军 建设 卫国 文革 晓东 永刚 立军 爱国 振东 海波 洪波 新华 光明 树军"
        ),
        "first": "建志国卫永海立红学晓振洪新光树继长春德文",
        "second": "华军强东涛平新刚明波伟勇斌国民林生峰杰江",
    },
    ("mid", "F"): {
        "whole": _words(
            "丽 红 霞 燕 丽华 红梅 秀梅 玉梅 晓红 海燕 美玲 丽娟 艳 萍 敏 静 春燕 秀丽 "
            "丽娜 红霞 艳红 玉红 秀芹 丽萍 爱华 桂芹 晓燕 美华 春华 秀娟 丽君 海英"
        ),
        "first": "丽红晓海美秀玉春艳爱桂彩雪素冬",
        "second": "华梅红燕玲娟萍霞芹英君丽敏娜芳",
    },
    ("young", "M"): {
        "whole": _words(
            "磊 鹏 超 杰 浩 帅 强 亮 宁 凯 鑫 晓东 海波 志鹏 文博 俊杰 新宇 建伟 "
            "明 伟 涛 斌 振宇 晓飞 鹏飞 文涛 家豪 志远 俊 阳 龙 晨 昊 宇 飞 健 成龙"
        ),
        "first": "志俊新建晓鹏文家振明海云立天国宏嘉",
        "second": "鹏杰宇伟飞涛博豪远龙辉峰磊明阳强超",
    },
    ("young", "F"): {
        "whole": _words(
            "婷 静 丹 莉 倩 雪 娟 晓丽 婷婷 丽丽 晶晶 慧 楠 莹 佳 娜 琳 璐 "
            "文静 晓雪 雪梅 丹丹 蕾 颖 萌 洁 敏 瑶 璇 晓琳 佳佳 玉洁 梦 菲 露"
        ),
        "first": "晓雪丹文佳玉梦思雅欣美丽海春秋",
        "second": "丽婷静雪琳娜洁颖慧倩莹蕾敏璐瑶",
    },
    ("child", "M"): {
        "whole": _words(
            "浩然 子轩 宇轩 梓豪 俊熙 子豪 浩宇 一鸣 博文 睿 宇航 天佑 铭 泽宇 思远 "
            "皓轩 俊宇 梓睿 一诺 沐阳 锦程 奕辰 子墨 宸 嘉懿 煜 浩轩 明轩 宇泽 景行 奕 昊天"
        ),
        "first": "浩子宇梓俊一博天泽思皓沐锦奕嘉明景昊睿铭",
        "second": "然轩豪熙宇鸣文航佑远睿阳程辰墨懿泽行天宸",
    },
    ("child", "F"): {
        "whole": _words(
            "梓涵 欣怡 子涵 雨涵 诗涵 可馨 一诺 紫萱 思琪 语桐 佳怡 欣妍 梦琪 若曦 "
            "雨桐 思涵 诗琪 梓萱 语嫣 可欣 芷若 依诺 沐晴 安然 一涵 书瑶 昕怡 悦 瑾 萱 妍"
        ),
        "first": "梓欣子雨诗可紫思语佳梦若芷依沐安书昕",
        "second": "涵怡馨萱琪桐妍曦嫣欣若诺晴然瑶冉",
    },
}


def generation(birth_year: int) -> str:
    if birth_year < 1960:
        return "old"
    if birth_year < 1980:
        return "mid"
    if birth_year < 2005:
        return "young"
    return "child"


def surname(rng: random.Random) -> str:
    return rng.choices(SURNAMES, cum_weights=_SURNAME_CUM)[0]


def given_name(rng: random.Random, sex: str, birth_year: int) -> str:
    pool = _GIVEN[(generation(birth_year), "F" if sex == "F" else "M")]
    if rng.random() < 0.45:
        return rng.choice(pool["whole"])
    name = rng.choice(pool["first"]) + rng.choice(pool["second"])
    return name if name[0] != name[1] or rng.random() < 0.3 else name[0]


def full_name(rng: random.Random, sex: str, birth_year: int, family: str | None = None) -> str:
    return (family or surname(rng)) + given_name(rng, sex, birth_year)


# Villages: 王家庄 于家夼 孙家泊 姜格庄; 前石河 东河头; 凤凰山 杏花.
_VILLAGE_SUFFIX = ["家庄", "家寨", "家疃", "家沟", "家夼", "家泊", "格庄", "家岭", "家洼", "家埠"]
_DIRECTIONS = "东西南北前后上下大小"
_BASES = [
    "庄",
    "河",
    "山",
    "岭",
    "沟",
    "泊",
    "夼",
    "疃",
    "埠",
    "石河",
    "河头",
    "山后",
    "庄头",
    "店",
    "营",
    "寨",
    "林",
    "湾",
    "崖",
    "河北",
    "河南",
    "官庄",
    "柳林",
    "石桥",
    "台",
    "洼",
]
_NATURE = [
    "凤凰山",
    "柳树",
    "杏花",
    "桃园",
    "槐树",
    "梨园",
    "石门",
    "龙泉",
    "青山",
    "黄土",
    "白石",
    "松山",
    "马山",
    "鹿角",
    "盘石",
    "清泉",
    "榆林",
    "枣行",
    "桑园",
    "泉水",
    "云山",
    "望海",
    "沙岭",
    "双山",
    "金山",
    "银河",
    "花园",
    "古城",
    "新庄",
    "太平",
    "和平",
    "丰收",
    "杨树",
    "石岭",
    "长沙",
    "龙王庙",
]


def village_name(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        core = surname(rng)[:1] + rng.choice(_VILLAGE_SUFFIX)
    elif roll < 0.82:
        core = rng.choice(_DIRECTIONS) + rng.choice(_BASES)
    else:
        core = rng.choice(_NATURE)
    return core + "村"


def village_names(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct village names; a clash gets the peninsula's usual 前/后/东/西 qualifier."""
    seen: set[str] = set()
    names: list[str] = []
    while len(names) < count:
        name = village_name(rng)
        if name in seen:
            name = rng.choice("前后东西") + name
        if name in seen or len(name) > 8:
            continue
        seen.add(name)
        names.append(name)
    return names


# Mobile number prefixes of the three operators.
_PHONE_PREFIXES = _words(
    "134 135 136 137 138 139 147 150 151 152 157 158 159 178 182 183 184 187 188 198 "
    "130 131 132 155 156 166 175 176 185 186 133 153 173 177 180 181 189 199"
)
RESERVED_PHONE_PREFIX = "1380000"  # kept for the fixed demo accounts (13800000001 …)


def phone(rng: random.Random, used: set[str]) -> str:
    while True:
        number = rng.choice(_PHONE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"
        if number not in used and not number.startswith(RESERVED_PHONE_PREFIX):
            used.add(number)
            return number


_STREETS = ["东街", "西街", "南街", "北街", "中心街", "前街", "后街", "大街", "新村路", "文化路", "幸福街"]


def house_address(rng: random.Random) -> str:
    if rng.random() < 0.35:
        return f"{rng.randint(1, 30)}排{rng.randint(1, 20)}号"
    return f"{rng.choice(_STREETS)}{rng.randint(1, 180)}号"
