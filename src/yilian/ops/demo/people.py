"""Households of the demo county (户): who lives together, their ages, names and identifiers. Pure.

A household is made from one of a few shapes seen in a rural Shandong county (young family, three
generations under one roof, an elderly couple, an elderly person alone, …), which gives the
county its age pyramid: many elderly, fewer young adults (who work in the cities), children.

Resident ID numbers are valid GB 11643-1999 numbers (``common.resident_id.build``): area code of
the county (or a neighbouring one for those who married in), the birth date, an order code whose
parity is the sex, and the MOD 11-2 check character. They are distinct across the county.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from yilian.common import resident_id
from yilian.ops.demo import names
from yilian.ops.demo.county import AREA_CODES

SELF, SPOUSE, CHILD, PARENT = "self", "spouse", "child", "parent"

_AREAS = [a for a, _ in AREA_CODES]
_AREA_WEIGHTS = [w for _, w in AREA_CODES]
_ETHNICITIES = [("汉族", 994), ("回族", 3), ("满族", 2), ("蒙古族", 1)]


@dataclass
class Person:
    name: str
    sex: str
    birth: date
    id_number: str
    phone: str
    relationship: str
    ethnicity: str = "汉族"
    verified: bool = True
    card_no: str = ""
    family: str = ""  # the surname, which children take from their father


@dataclass
class Household:
    village: int  # index into the county's villages
    address: str
    members: list[Person] = field(default_factory=list)

    @property
    def head(self) -> Person:
        return self.members[0]


class PeopleFactory:
    """Draws people and households from one ``random.Random``; tracks identifiers already used."""

    def __init__(self, rng: random.Random, *, as_of: date, max_members: int = 5) -> None:
        self.rng = rng
        self.as_of = as_of
        self.max_members = max_members  # an account binds at most this many patients (B-16)
        self.used_ids: set[tuple[str, date, int]] = set()
        self.used_phones: set[str] = set()
        self.used_cards: set[str] = set()

    # --- single attributes -------------------------------------------------------------
    def birth_for_age(self, age: int) -> date:
        latest = self.as_of - timedelta(days=1)
        day = self.rng.randrange(365)
        born = date(latest.year - age, 1, 1) + timedelta(days=day)
        return min(born, latest)

    def id_number(self, birth: date, sex: str) -> str:
        area = self.rng.choices(_AREAS, weights=_AREA_WEIGHTS)[0]
        while True:
            order = self.rng.randrange(500)
            key = (area, birth, order)
            if key not in self.used_ids:
                self.used_ids.add(key)
                return resident_id.build(area, birth, order, sex)

    def phone_for_age(self, age: int, *, required: bool = False) -> str:
        chance = 0.0 if age < 16 else 0.5 if age < 18 else 0.93 if age <= 75 else 0.55
        if required or self.rng.random() < chance:
            return names.phone(self.rng, self.used_phones)
        return ""

    def card_no(self) -> str:
        """A card number of ``patients.services.new_card_no``'s shape: ``YL`` + 16 random digits."""
        while True:
            number = f"YL{self.rng.randrange(10**16):016d}"
            if number not in self.used_cards:
                self.used_cards.add(number)
                return number

    def person(
        self,
        age: int,
        sex: str,
        relationship: str,
        *,
        family: str | None = None,
        required_phone: bool = False,
    ) -> Person:
        birth = self.birth_for_age(age)
        family = family or names.surname(self.rng)
        eth = self.rng.choices([e for e, _ in _ETHNICITIES], weights=[w for _, w in _ETHNICITIES])[0]
        return Person(
            name=family + names.given_name(self.rng, sex, birth.year),
            sex=sex,
            birth=birth,
            id_number=self.id_number(birth, sex),
            phone=self.phone_for_age(age, required=required_phone),
            relationship=relationship,
            ethnicity=eth,
            verified=self.rng.random() < 0.88,
            card_no=self.card_no(),
            family=family,
        )

    # --- households ----------------------------------------------------------------------
    def _couple(self, head_age: int) -> list[Person]:
        rng = self.rng
        head_sex = "M" if rng.random() < 0.72 else "F"
        head = self.person(head_age, head_sex, SELF, required_phone=True)
        spouse_age = max(20, head_age + (rng.randint(-5, 1) if head_sex == "M" else rng.randint(-1, 5)))
        spouse = self.person(spouse_age, "F" if head_sex == "M" else "M", SPOUSE)
        return [head, spouse]

    def _children(self, couple: list[Person], count: int, max_age: int) -> list[Person]:
        father = next((p for p in couple if p.sex == "M"), couple[0])
        mother = next((p for p in couple if p.sex == "F"), couple[-1])
        mother_age = self.as_of.year - mother.birth.year
        oldest = max(0, min(max_age, mother_age - 21))
        kids = []
        for _ in range(count):
            age = self.rng.randint(0, oldest)
            sex = "M" if self.rng.random() < 0.52 else "F"
            kids.append(self.person(age, sex, CHILD, family=father.family))
        return kids

    def household(self, village: int) -> Household:
        rng = self.rng
        shape = rng.choices(
            ["young_family", "three_generations", "elderly_couple", "elderly_alone", "couple", "single"],
            weights=[28, 20, 24, 11, 12, 5],
        )[0]
        members: list[Person]
        if shape == "young_family":
            members = self._couple(rng.randint(27, 45))
            members += self._children(members, rng.choices([1, 2, 3], weights=[45, 48, 7])[0], 17)
        elif shape == "three_generations":
            members = self._couple(rng.randint(35, 58))
            members += self._children(members, rng.choices([1, 2], weights=[55, 45])[0], 28)
            head_age = self.as_of.year - members[0].birth.year
            parents = min(rng.choices([1, 2], weights=[60, 40])[0], self.max_members - len(members))
            for _ in range(parents):
                age = min(99, head_age + rng.randint(22, 32))
                sex = "F" if rng.random() < 0.6 else "M"
                family = members[0].family if sex == "M" and members[0].sex == "M" else None
                members.append(self.person(age, sex, PARENT, family=family))
        elif shape == "elderly_couple":
            members = self._couple(rng.randint(60, 86))
        elif shape == "elderly_alone":
            sex = "F" if rng.random() < 0.68 else "M"
            members = [self.person(rng.randint(65, 96), sex, SELF, required_phone=True)]
        elif shape == "couple":
            members = self._couple(rng.randint(22, 59))
        else:
            members = [
                self.person(
                    rng.randint(19, 60), "M" if rng.random() < 0.6 else "F", SELF, required_phone=True
                )
            ]
        return Household(
            village=village, address=names.house_address(rng), members=members[: self.max_members]
        )

    def demo_family(self, village: int, phone: str) -> Household:
        """The demo patient account's family of three: self, spouse and a child."""
        head = self.person(36, "M", SELF)
        self.used_phones.add(phone)
        head.phone = phone
        head.verified = True
        spouse = self.person(34, "F", SPOUSE)
        child = self.person(7, "F", CHILD, family=head.family)
        return Household(village=village, address="中心街8号", members=[head, spouse, child])


def households(factory: PeopleFactory, *, patients: int, villages: list[float], first: Household | None):
    """Yield households until ``patients`` people exist, spread over villages by their weights."""
    made = 0
    index = list(range(len(villages)))
    cum = []
    total = 0.0
    for w in villages:
        total += w
        cum.append(total)
    if first is not None:
        first.members = first.members[:patients]
        made += len(first.members)
        yield first
    while made < patients:
        village = factory.rng.choices(index, cum_weights=cum)[0]
        house = factory.household(village)
        house.members = house.members[: patients - made]
        made += len(house.members)
        yield house
