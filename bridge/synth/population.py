"""The synthetic population: one true person each, and each source system's copy of them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from math import gcd

from bridge.core.nhs_number import check_digit, is_valid
from bridge.synth import vocab as v


def weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    """Pick a value from ``(value, weight)`` pairs."""
    total = 0.0
    for _, w in options:
        total += w
    x = rng.random() * total
    for value, w in options:
        x -= w
        if x < 0:
            return value
    return options[-1][0]


class Permutation:
    """Hand out distinct numbers from ``[offset, offset + size)`` in a seeded, scattered order.

    An affine map ``k -> (a*k + b) mod size`` with ``a`` coprime to ``size`` is a bijection, so
    ids never collide and need no memory of what was issued (bounded memory at any scale).
    """

    def __init__(self, rng: random.Random, size: int, offset: int = 0) -> None:
        a = rng.randrange(size // 3, size)
        while gcd(a, size) != 1:
            a += 1
        self._a, self._b, self._size, self._offset = a, rng.randrange(size), size, offset
        self._next = 0

    def take(self) -> int:
        """Return the next number; raise when the range is used up."""
        if self._next >= self._size:
            raise ValueError("identifier range exhausted")
        k = self._next
        self._next += 1
        return (self._a * k + self._b) % self._size + self._offset


class Identifiers:
    """Allocate every identifier of a run: NHS numbers, CHS MRNs, ASC person ids, record ids."""

    def __init__(self, rng: random.Random) -> None:
        self._nhs = Permutation(rng, 1_000_000)
        self._chs = Permutation(rng, 9_000_000, 1_000_000)
        self._asc = Permutation(rng, 9_000_000, 1_000_000)
        self._counters: dict[str, int] = {}

    def nhs_number(self) -> str:
        """Return an unused checksum-valid NHS number in the 999 test range."""
        while True:
            first_nine = f"999{self._nhs.take():06d}"
            digit = check_digit(first_nine)
            # Some prefixes have no valid check digit; 9999999999 passes the checksum but is
            # never issued, so is_valid rejects it too.
            if digit is not None and is_valid(first_nine + str(digit)):
                return first_nine + str(digit)

    def chs_patient_id(self) -> str:
        """Return a new community health record number (MRN)."""
        return f"CHS{self._chs.take()}"

    def asc_person_id(self) -> str:
        """Return a new social care person id."""
        return f"ASC{self._asc.take()}"

    def record_id(self, prefix: str) -> str:
        """Return the next sequential record id for a record kind, e.g. ``REF00000001``."""
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}{n:08d}"


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address as both systems hold it."""

    line1: str
    locality: str
    town: str
    county: str
    postcode: str


@dataclass(frozen=True, slots=True)
class Practice:
    """A GP practice and its lead GP."""

    ods_code: str
    name: str
    gp_code: str
    gp_given: str
    gp_family: str
    phone: str


@dataclass(frozen=True, slots=True)
class Worker:
    """A named member of staff (social care worker or community clinician)."""

    worker_id: str
    given: str
    family: str
    team_id: str
    team_name: str
    role: str

    @property
    def name(self) -> str:
        """Return the display name."""
        return f"{self.given} {self.family}"


@dataclass(frozen=True, slots=True)
class Carer:
    """An unpaid carer (also the next of kin the health record holds)."""

    given: str
    family: str
    relationship: str
    hl7_code: str
    hl7_text: str
    lives_with: bool
    phone: str
    hours_per_week: int


@dataclass(frozen=True, slots=True)
class Demographics:
    """One system's copy of a person's identifying details."""

    title: str
    given: str
    middle: str | None
    family: str
    preferred: str | None
    dob: date
    sex: str
    address: Address
    phone_home: str | None
    phone_mobile: str | None


@dataclass(slots=True)
class Person:
    """The truth about one synthetic human."""

    index: int
    key: str
    in_chs: bool
    in_asc: bool
    truth: Demographics
    double_barrelled: bool
    ethnicity: tuple[str, str]
    language: str
    interpreter: bool
    marital: str
    nhs_number: str
    nhs_status: str
    asc_has_nhs: bool
    practice: Practice
    profile: str
    support_reason: str
    carer: Carer | None
    accessibility: tuple[str, ...]
    chs_patient_id: str | None = None
    asc_person_id: str | None = None
    chs_merged_ids: list[str] = field(default_factory=list)
    discrepancies: list[str] = field(default_factory=list)

    @property
    def age_group(self) -> str:
        """Return ``"65+"`` or ``"18-64"``."""
        return "65+" if self.profile.startswith("older") else "18-64"


@dataclass(frozen=True, slots=True)
class Pools:
    """Shared organisations and staff for a run (chosen once from the master seed)."""

    practices: tuple[Practice, ...]
    asc_workers: dict[str, tuple[Worker, ...]]
    chs_staff: dict[str, tuple[Worker, ...]]
    consultants: tuple[Worker, ...]


def _phone(rng: random.Random, mobile: bool) -> str:
    """Return a drama-range number that can never reach a real line."""
    if mobile:
        return f"{v.MOBILE_PREFIX}{rng.randrange(1000):03d}"
    return f"{v.LANDLINE_PREFIX}{rng.randrange(1000):03d}"


def _street(rng: random.Random) -> str:
    """Return an invented street name."""
    return f"{rng.choice(v.STREET_FIRST)} {rng.choice(v.STREET_SECOND)}"


def make_address(rng: random.Random) -> Address:
    """Return an invented address in one of the borough's postcode districts."""
    district, locality = rng.choice(v.DISTRICTS)
    letters = v.POSTCODE_LETTERS
    postcode = f"{district} {rng.randrange(1, 10)}{rng.choice(letters)}{rng.choice(letters)}"
    number = rng.randrange(1, 180)
    if rng.random() < 0.12:
        line1 = f"Flat {rng.randrange(1, 24)}, {number} {_street(rng)}"
    else:
        line1 = f"{number} {_street(rng)}"
    return Address(line1, locality, v.TOWN, v.COUNTY, postcode)


def _given_pool(pool: str, sex: str, older: bool) -> tuple[str, ...]:
    """Return the given-name list for a name pool, sex and generation."""
    if pool == "british":
        if sex == "M":
            return v.MALE_BRITISH_OLDER if older else v.MALE_BRITISH_YOUNGER
        return v.FEMALE_BRITISH_OLDER if older else v.FEMALE_BRITISH_YOUNGER
    male, female, _ = v.NAME_POOLS[pool]
    return male if sex == "M" else female


def _family_pool(pool: str) -> tuple[str, ...]:
    """Return the family-name list for a name pool."""
    return v.FAMILY_BRITISH if pool == "british" else v.NAME_POOLS[pool][2]


def make_pools(rng: random.Random) -> Pools:
    """Choose the run's GP practices, social care workers and community clinicians."""
    practices: list[Practice] = []
    used: set[str] = set()
    while len(practices) < 24:
        code = f"Y{rng.randrange(10000, 99999)}"
        if code in used:
            continue
        used.add(code)
        _, locality = rng.choice(v.DISTRICTS)
        family = rng.choice(v.FAMILY_BRITISH + v.FAMILY_SOUTH_ASIAN)
        name = rng.choice(v.PRACTICE_PATTERNS).format(
            loc=locality, street=rng.choice(v.STREET_FIRST), family=family
        )
        sex = rng.choice("MF")
        gp_given = rng.choice(_given_pool("british", sex, older=False))
        practices.append(
            Practice(
                code,
                name,
                f"G{rng.randrange(1000000, 9999999)}",
                gp_given,
                family,
                _phone(rng, mobile=False),
            )
        )

    staff_ids: set[str] = set()

    def staff(team_id: str, team_name: str, role: str, n: int, prefix: str) -> tuple[Worker, ...]:
        out: list[Worker] = []
        while len(out) < n:
            staff_id = f"{prefix}{rng.randrange(10000, 99999)}"
            if staff_id in staff_ids:
                continue
            staff_ids.add(staff_id)
            sex = rng.choice("MFF")
            pool = weighted(rng, (("british", 0.8), ("south_asian", 0.15), ("polish", 0.05)))
            out.append(
                Worker(
                    staff_id,
                    rng.choice(_given_pool(pool, sex, older=False)),
                    rng.choice(_family_pool(pool)),
                    team_id,
                    team_name,
                    role,
                )
            )
        return tuple(out)

    asc_workers = {
        tid: staff(tid, name, v.ASC_WORKER_ROLES[tid], 6, "W") for tid, name in v.ASC_TEAMS
    }
    chs_staff = {code: staff(code, name, role, 5, "S") for code, name, role in v.CHS_TEAMS}
    consultants = staff("CONS", "Community Geriatrics", "consultant", 6, "C")
    return Pools(tuple(practices), asc_workers, chs_staff, consultants)


_PROFILES_OLDER = (
    ("older_physical", 0.6),
    ("older_memory", 0.3),
    ("older_sensory", 0.05),
    ("older_mental", 0.05),
)
_PROFILES_YOUNGER = (
    ("adult_learning", 0.35),
    ("adult_mental", 0.3),
    ("adult_physical", 0.25),
    ("adult_substance", 0.1),
)
_SUPPORT_REASON = {
    "older_physical": v.PSR_PHYSICAL_PERSONAL,
    "older_memory": v.PSR_MEMORY,
    "older_sensory": v.PSR_SENSORY_VISUAL,
    "older_mental": v.PSR_MENTAL,
    "adult_learning": v.PSR_LEARNING,
    "adult_mental": v.PSR_MENTAL,
    "adult_physical": v.PSR_PHYSICAL_ACCESS,
    "adult_substance": v.PSR_SUBSTANCE,
}
_ETHNICITY_WEIGHTS = tuple((code, w) for code, _, _, w in v.ETHNICITY)
_ETHNICITY = {code: (text, pool) for code, text, pool, _ in v.ETHNICITY}


def _age(rng: random.Random) -> int:
    """Return an age weighted like a social care caseload (about two thirds 65 and over)."""
    if rng.random() < 0.66:
        band = weighted(rng, (("65", 0.25), ("75", 0.4), ("85", 0.3), ("95", 0.05)))
        return int(band) + rng.randrange(10)
    return rng.randrange(18, 65)


def make_person(
    index: int,
    rng: random.Random,
    ids: Identifiers,
    pools: Pools,
    as_of: date,
) -> Person:
    """Create the true person ``index`` and decide which systems know them."""
    u = rng.random()
    in_chs, in_asc = (True, True) if u < 0.70 else (True, False) if u < 0.85 else (False, True)
    age = _age(rng)
    older = age >= 65
    profile = weighted(rng, _PROFILES_OLDER if older else _PROFILES_YOUNGER)
    ethnic_code = weighted(rng, _ETHNICITY_WEIGHTS)
    ethnic_text, pool = _ETHNICITY[ethnic_code]
    x = rng.random()
    sex = "U" if x < 0.004 else "F" if x < 0.58 else "M"
    name_sex = sex if sex != "U" else rng.choice("MF")
    given = rng.choice(_given_pool(pool, name_sex, older))
    middle = None
    if pool == "british" and rng.random() < 0.55:
        middle = rng.choice(v.MIDDLE_MALE if name_sex == "M" else v.MIDDLE_FEMALE)
        if middle == given:
            middle = None
    family_names = _family_pool(pool)
    family = rng.choice(family_names)
    double_barrelled = pool == "british" and rng.random() < 0.04
    if double_barrelled:
        second = rng.choice(family_names)
        if second != family:
            family = f"{family}-{second}"
        else:
            double_barrelled = False
    birth_year = as_of.year - age - 1
    dob = date(birth_year, 1, 1) + timedelta(days=rng.randrange(365))
    marital = (
        weighted(rng, v.MARITAL) if older else weighted(rng, (("S", 0.6), ("M", 0.3), ("D", 0.1)))
    )
    if sex == "M":
        title = "Mr"
    elif sex == "F":
        title = (
            "Mrs" if marital in ("M", "W") and rng.random() < 0.85 else rng.choice(("Ms", "Miss"))
        )
    else:
        title = "Mx"
    if rng.random() < 0.01:
        title = "Dr"
    nicknames = v.NICKNAMES.get(given)
    preferred = rng.choice(nicknames) if nicknames and rng.random() < 0.6 else None
    truth = Demographics(
        title=title,
        given=given,
        middle=middle,
        family=family,
        preferred=preferred,
        dob=dob,
        sex=sex,
        address=make_address(rng),
        phone_home=_phone(rng, mobile=False) if rng.random() < 0.75 else None,
        phone_mobile=_phone(rng, mobile=True) if rng.random() < (0.45 if older else 0.85) else None,
    )
    language = weighted(rng, v.LANGUAGES[pool])
    interpreter = language != "en" and rng.random() < 0.7
    carer = None
    if rng.random() < (0.45 if older else 0.3):
        carer = _make_carer(rng, truth, marital, older, pool)
    accessibility: tuple[str, ...] = ()
    if rng.random() < 0.12:
        accessibility = tuple(sorted(rng.sample(v.ACCESSIBILITY_NEEDS, rng.choice((1, 1, 2)))))
    if profile == "adult_learning" and "easy_read" not in accessibility and rng.random() < 0.6:
        accessibility = tuple(sorted((*accessibility, "easy_read")))
    # Verification status (NHS Data Dictionary NHS NUMBER STATUS INDICATOR CODE).
    status = weighted(rng, (("01", 0.9), ("02", 0.08), ("03", 0.02)))
    return Person(
        index=index,
        key=f"P{index + 1:07d}",
        in_chs=in_chs,
        in_asc=in_asc,
        truth=truth,
        double_barrelled=double_barrelled,
        ethnicity=(ethnic_code, ethnic_text),
        language=language,
        interpreter=interpreter,
        marital=marital,
        nhs_number=ids.nhs_number(),
        nhs_status=status,
        asc_has_nhs=rng.random() >= 0.15,
        practice=rng.choice(pools.practices),
        profile=profile,
        support_reason=_SUPPORT_REASON[profile],
        carer=carer,
        accessibility=accessibility,
    )


def _make_carer(
    rng: random.Random, truth: Demographics, marital: str, older: bool, pool: str
) -> Carer:
    """Return the person's unpaid carer, usually a spouse or an adult child."""
    if marital == "M" and rng.random() < 0.7:
        relationship = "Husband" if truth.sex == "F" else "Wife"
    elif older:
        relationship = weighted(
            rng, (("Daughter", 0.5), ("Son", 0.3), ("Friend", 0.1), ("Neighbour", 0.1))
        )
    else:
        relationship = weighted(
            rng,
            (
                ("Mother", 0.4),
                ("Father", 0.15),
                ("Sister", 0.2),
                ("Brother", 0.1),
                ("Partner", 0.15),
            ),
        )
    code, text = next((c, t) for r, c, t in v.RELATIONSHIPS if r == relationship)
    carer_sex = "M" if relationship in ("Husband", "Son", "Brother", "Father") else "F"
    if relationship == "Partner":
        carer_sex = rng.choice("MF")
    family = truth.family
    if relationship in ("Friend", "Neighbour") or (
        relationship in ("Daughter", "Partner") and rng.random() < 0.5
    ):
        family = rng.choice(_family_pool(pool))
    younger_generation = relationship in ("Daughter", "Son") or not older
    given = rng.choice(_given_pool(pool, carer_sex, older=not younger_generation))
    lives_with = relationship in ("Husband", "Wife", "Partner") or rng.random() < 0.25
    return Carer(
        given=given,
        family=family,
        relationship=relationship,
        hl7_code=code,
        hl7_text=text,
        lives_with=lives_with,
        phone=_phone(rng, mobile=rng.random() < 0.6),
        hours_per_week=rng.choice((5, 10, 20, 35, 50, 70)),
    )


def _typo(rng: random.Random, name: str) -> str:
    """Return ``name`` with one adjacent transposition or one deleted letter."""
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    if len(name) < 4:
        return name
    if rng.random() < 0.5:
        for _ in range(5):
            i = rng.randrange(1, len(name) - 1)
            if name[i].isalpha() and name[i + 1].isalpha() and name[i] != name[i + 1]:
                return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    i = rng.choice(letters[1:])
    return name[:i] + name[i + 1 :]


def system_copies(
    person: Person, rng: random.Random
) -> tuple[Demographics, Demographics, list[str]]:
    """Return the CHS and ASC copies of a person's details and the discrepancies between them.

    Only persons known to both systems get discrepancies; the names are what the benchmarks
    of identity matching read back from truth.jsonl.
    """
    t = person.truth
    chs = replace(t)
    # Social care often records the name the person asked to be called.
    asc = replace(t, given=t.preferred if t.preferred and rng.random() < 0.15 else t.given)
    notes: list[str] = []
    if not (person.in_chs and person.in_asc):
        return chs, asc, notes
    if t.preferred and asc.given == t.given and rng.random() < 0.35:
        if rng.random() < 0.8:
            asc = replace(asc, given=t.preferred)
        else:
            chs = replace(chs, given=t.preferred)
        notes.append("nickname")
    elif asc.given != t.given:
        notes.append("nickname")
    if t.middle and rng.random() < 0.5:
        asc = replace(asc, middle=None)
        notes.append("missing_middle_name")
    if person.double_barrelled and rng.random() < 0.6:
        first, second = t.family.split("-", 1)
        variant = weighted(rng, (("space", 0.4), ("second", 0.4), ("first", 0.2)))
        asc = replace(
            asc,
            family={"space": f"{first} {second}", "second": second, "first": first}[variant],
        )
        notes.append("double_barrelled_variant")
    if rng.random() < 0.05:
        before = (chs.family, asc.family)
        if rng.random() < 0.7:
            asc = replace(asc, family=_typo(rng, asc.family))
        else:
            chs = replace(chs, family=_typo(rng, chs.family))
        # Names shorter than four letters are left alone: a typo there reads as another name.
        if (chs.family, asc.family) != before:
            notes.append("family_name_typo")
    if rng.random() < 0.02 and t.dob.day <= 12 and t.dob.day != t.dob.month:
        asc = replace(asc, dob=date(t.dob.year, t.dob.day, t.dob.month))
        notes.append("dob_day_month_swap")
    if rng.random() < 0.08:
        moved = make_address(rng)
        if rng.random() < 0.5:
            asc = replace(asc, address=moved)
        else:
            chs = replace(chs, address=moved)
        notes.append("address_moved")
    if rng.random() < 0.2:
        # Numbers change and systems catch up at different times: not scored as a discrepancy.
        asc = replace(asc, phone_mobile=_phone(rng, mobile=True))
    return chs, asc, notes


def local_time(day: date, rng: random.Random, start_hour: int = 8, end_hour: int = 18) -> datetime:
    """Return a working-hours time on ``day`` in 5-minute steps (never near the clock change)."""
    minutes = rng.randrange(start_hour * 12, end_hour * 12) * 5
    return datetime(day.year, day.month, day.day, minutes // 60, minutes % 60)
