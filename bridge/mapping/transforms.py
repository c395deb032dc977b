"""Registered transforms: pure functions a spec names in ``transform:`` (``source_to_target``).

Each takes the source value, its checked ``args`` and a :class:`TransformContext` (the
injected ``now``, the deployment configuration and a way to warn) and returns a FHIR value,
or None for "nothing to write". It raises :class:`TransformError` for a value it cannot
use; the engine turns that into a ``MappingError`` naming the spec, rule and field. No
transform reads files, the clock or randomness.

To add one: write the function, decorate it with ``@transform(...)`` declaring its args,
what input it takes and the FHIR type it returns, and document it in docs/mappings.md (a
test checks every transform is documented).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.core import nhs_number
from bridge.mapping.paths import kind_of

TransformFunc = Callable[[Any, Mapping[str, Any], "TransformContext"], Any]


class TransformError(Exception):
    """A transform cannot use its input; ``part`` names the ``from:`` key at fault."""

    def __init__(self, reason: str, *, part: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.part = part


@dataclass
class TransformContext:
    """What a transform may know besides its input."""

    now: datetime
    config: Mapping[str, str]
    warnings: list[tuple[str, str | None]] = field(default_factory=list)

    def warn(self, message: str, *, part: str | None = None) -> None:
        """Record a non-fatal problem (e.g. an invalid NHS number kept as a local id)."""
        self.warnings.append((message, part))


@dataclass(frozen=True)
class Arg:
    """One argument a transform takes."""

    type: type
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] | None = None
    help: str = ""


@dataclass(frozen=True)
class Transform:
    """A registered transform and what the compiler checks about its use."""

    name: str
    func: TransformFunc
    summary: str
    output: str  # FHIR type of the result ("date", "HumanName"…)
    args: Mapping[str, Arg]
    # Input: "value" (one text/number), "parts" (``from:`` a mapping of these keys) or both.
    accepts_value: bool
    parts: frozenset[str]
    config: tuple[str, ...] = ()


REGISTRY: dict[str, Transform] = {}


def transform(
    name: str,
    *,
    output: str,
    args: Mapping[str, Arg] | None = None,
    value: bool = True,
    parts: tuple[str, ...] = (),
    config: tuple[str, ...] = (),
) -> Callable[[TransformFunc], TransformFunc]:
    """Register a transform under ``name`` (``source_to_target``)."""

    def register(func: TransformFunc) -> TransformFunc:
        if name in REGISTRY:
            raise ValueError(f"transform {name} is registered twice")
        doc = (func.__doc__ or "").strip().splitlines()
        REGISTRY[name] = Transform(
            name=name,
            func=func,
            summary=doc[0] if doc else name,
            output=output,
            args=dict(args or {}),
            accepts_value=value,
            parts=frozenset(parts),
            config=config,
        )
        return func

    return register


# -- helpers ------------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")


def _text(value: Any, what: str, *, part: str | None = None) -> str:
    """Return ``value`` as text; whole numbers are accepted (ids exported as numbers)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TransformError(f"expected {what} as text, got {kind_of(value)}", part=part)


def _parts(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TransformError(f"{name} takes parts (from: a mapping), got {kind_of(value)}")
    return value


def _words(value: Any, what: str, part: str) -> list[str]:
    """Return the words of text, or of each text in a list (middle names, given names)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    words: list[str] = []
    for item in items:
        if item is None:
            continue
        words.extend(_text(item, what, part=part).split())
    return words


def _one_line(value: Any, what: str, part: str) -> str | None:
    if value is None:
        return None
    text = _SPACES.sub(" ", _text(value, what, part=part)).strip()
    return text or None


_STRFTIME_WORDS = {"%Y": "YYYY", "%m": "MM", "%d": "DD", "%H": "hh", "%M": "mm", "%S": "ss"}


def _human_format(fmt: str) -> str:
    for code, word in _STRFTIME_WORDS.items():
        fmt = fmt.replace(code, word)
    return fmt.replace("%z", "±hhmm")


# -- dates and times ----------------------------------------------------------------------

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LONDON = "Europe/London"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TransformError(f"unknown time zone {name!r}") from None


@transform(
    "iso_date_to_date",
    output="date",
    args={
        "format": Arg(str, "%Y-%m-%d", help="strptime format of the source, e.g. %d/%m/%Y"),
        "not_future": Arg(bool, False, help="refuse a date after today (Europe/London)"),
    },
)
def iso_date_to_date(value: Any, args: Mapping[str, Any], ctx: TransformContext) -> str:
    """Parse a calendar date in an explicit format into a FHIR date (YYYY-MM-DD)."""
    text = _text(value, "a date")
    fmt = args["format"]
    try:
        if fmt == "%Y-%m-%d":
            # fromisoformat is faster but also accepts 20260101; insist on the dashes.
            if not _ISO_DATE.match(text):
                raise ValueError
            parsed = date.fromisoformat(text)
        else:
            parsed = datetime.strptime(text, fmt).date()
    except ValueError:
        raise TransformError(f"is not a real date in the format {_human_format(fmt)}") from None
    if parsed.year < 1:
        raise TransformError("is before year 1")
    if args["not_future"]:
        today = ctx.now.astimezone(_zone(_LONDON)).date()
        if parsed > today:
            raise TransformError(f"is in the future (after {today.isoformat()})")
    return parsed.isoformat()


@transform(
    "local_datetime_to_instant",
    output="instant",
    args={
        "format": Arg(str, "iso", help="strptime format, or iso for ISO 8601 (offset optional)"),
        "zone": Arg(str, _LONDON, help="IANA time zone of times without an offset"),
    },
)
def local_datetime_to_instant(value: Any, args: Mapping[str, Any], ctx: TransformContext) -> str:
    """Parse a date-time (local time in ``zone`` unless it has an offset) into a FHIR instant."""
    text = _text(value, "a date-time")
    fmt = args["format"]
    zone = _zone(args["zone"])
    try:
        if fmt == "iso":
            # Python 3.11 reads "Z" and "+01:00"; a bare date is not a date-time here.
            if len(text) < 16 or ("T" not in text.upper() and " " not in text):
                raise ValueError
            parsed = datetime.fromisoformat(text)
        else:
            parsed = datetime.strptime(text, fmt)
    except ValueError:
        wanted = "ISO 8601 (YYYY-MM-DDThh:mm[:ss][±hh:mm])" if fmt == "iso" else _human_format(fmt)
        raise TransformError(f"is not a real date-time in the format {wanted}") from None
    if parsed.tzinfo is None:
        local = parsed.replace(tzinfo=zone)
        # A wall time the clocks skipped does not survive a round trip through UTC.
        round_trip = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if round_trip != parsed:
            raise TransformError(
                f"names a time that did not exist in {zone.key} (the clocks went forward)"
            )
        if local.replace(fold=1).utcoffset() != local.utcoffset():
            ctx.warn(f"falls in the hour the clocks went back in {zone.key}; read as the first")
        parsed = local
    if parsed.year < 1 or parsed.astimezone(UTC).year < 1:
        raise TransformError("is before year 1")
    instant = parsed.astimezone(zone).replace(microsecond=0)
    offset = instant.utcoffset() or timedelta(0)
    # FHIR wants ±hh:mm; isoformat gives that for whole-minute offsets.
    if offset.seconds % 60:
        instant = instant.astimezone(UTC)
    return instant.isoformat()


# HL7 v2 DTM: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ] (TS component 1 is the same).
_HL7_DTM = re.compile(
    r"^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?"
    r"([+-]\d{4})?$"
)
_HL7_FORMAT = "YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]"


def _hl7_parts(value: Any) -> tuple[list[str | None], str | None]:
    """Split an HL7 DTM into its present parts (year … fraction) and its offset."""
    text = _text(value, "an HL7 date-time").strip()
    match = _HL7_DTM.match(text)
    if match is None:
        raise TransformError(f"is not an HL7 date-time ({_HL7_FORMAT})")
    *parts, offset = match.groups()
    year, month, day = (int(p) if p else 1 for p in parts[:3])
    try:
        date(year, month, day)
    except ValueError:  # also year 0000
        raise TransformError(f"is not a real date ({_HL7_FORMAT})") from None
    return parts, offset


def _hl7_date_text(parts: list[str | None]) -> str:
    year, month, day = parts[:3]
    return "-".join(p for p in (year, month, day) if p)


@transform(
    "hl7_datetime_to_datetime",
    output="dateTime",
    args={"zone": Arg(str, _LONDON, help="IANA time zone of times without an offset")},
)
def hl7_datetime_to_datetime(value: Any, args: Mapping[str, Any], ctx: TransformContext) -> str:
    """Read an HL7 v2 DTM/TS at its own precision into a FHIR dateTime."""
    parts, offset = _hl7_parts(value)
    if parts[3] is None:
        # A date (or year, or year-month): FHIR keeps that precision; an offset means nothing.
        return _hl7_date_text(parts)
    year, month, day, hour, minute, second = (int(p) if p else 0 for p in parts[:6])
    fraction = parts[6]
    try:
        wall = datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise TransformError(f"is not a real time of day ({_HL7_FORMAT})") from None
    if offset is None:
        # The sender's local time: placed in ``zone`` as local_datetime_to_instant does.
        text = local_datetime_to_instant(
            wall.isoformat(), {"format": "iso", "zone": args["zone"]}, ctx
        )
    else:
        hours, minutes = int(offset[1:3]), int(offset[3:])
        if hours > 14 or minutes > 59:
            raise TransformError(f"has the impossible UTC offset {offset}")
        # The sender's own offset is kept: it says what the clock on the ward showed.
        text = f"{wall.isoformat()}{offset[0]}{offset[1:3]}:{offset[3:]}"
    if fraction:
        text = f"{text[:19]}.{fraction}{text[19:]}"
    return text


@transform(
    "hl7_datetime_to_date",
    output="date",
    args={"not_future": Arg(bool, False, help="refuse a date after today (Europe/London)")},
)
def hl7_datetime_to_date(value: Any, args: Mapping[str, Any], ctx: TransformContext) -> str:
    """Read the date of an HL7 v2 DTM/TS (a time is dropped) into a FHIR date."""
    parts, _ = _hl7_parts(value)
    text = _hl7_date_text(parts)
    if args["not_future"]:
        today = ctx.now.astimezone(_zone(_LONDON)).date().isoformat()
        # Partial dates compare by their own precision: "2026-11" is not after "2026-11-01".
        if text > today[: len(text)]:
            raise TransformError(f"is in the future (after {today})")
    return text


# -- names, addresses, telecom ------------------------------------------------------------

NAME_USES = ("usual", "official", "temp", "nickname", "anonymous", "old", "maiden")
_TITLES = frozenset(
    "mr mrs ms miss mx dr prof professor sir dame rev revd lady lord master".split()
)


@transform(
    "name_parts_to_human_name",
    output="HumanName",
    args={"use": Arg(str, "official", choices=NAME_USES, help="HumanName.use")},
    value=False,
    parts=("prefix", "given", "family", "suffix"),
)
def name_parts_to_human_name(
    value: Any, args: Mapping[str, Any], ctx: TransformContext
) -> dict[str, Any] | None:
    """Build a HumanName from separate fields; given names are split into words."""
    parts = _parts(value, "name_parts_to_human_name")
    family = _one_line(parts.get("family"), "a family name", "family")
    given = _words(parts.get("given"), "a given name", "given")
    if not family and not given:
        return None
    name: dict[str, Any] = {"use": args["use"]}
    if family:
        name["family"] = family
    if given:
        name["given"] = given
    prefix = _words(parts.get("prefix"), "a title", "prefix")
    if prefix:
        name["prefix"] = prefix
    suffix = _words(parts.get("suffix"), "a suffix", "suffix")
    if suffix:
        name["suffix"] = suffix
    return name


@transform(
    "text_to_human_name",
    output="HumanName",
    args={"use": Arg(str, "official", choices=NAME_USES, help="HumanName.use")},
)
def text_to_human_name(
    value: Any, args: Mapping[str, Any], ctx: TransformContext
) -> dict[str, Any] | None:
    """Split one name text (``Dr Helen Singh``, ``SINGH, Helen``) into a HumanName."""
    text = _one_line(value, "a name", "value")
    if text is None:
        return None
    name: dict[str, Any] = {"use": args["use"], "text": text}
    if "," in text:
        family, _, rest = text.partition(",")
        words = rest.split()
        family = family.strip()
    else:
        words = text.split()
        family = words.pop() if len(words) > 1 else ""
    prefix: list[str] = []
    while words and words[0].lower().rstrip(".") in _TITLES:
        prefix.append(words.pop(0))
    if not family and words and not prefix:
        family = words.pop()
    if family:
        name["family"] = family
    if words:
        name["given"] = words
    if prefix:
        name["prefix"] = prefix
    return name


ADDRESS_USES = ("home", "work", "temp", "old", "billing")
_UK_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)\s*([0-9][A-Z]{2})$")


def _postcode(value: Any) -> str | None:
    text = _one_line(value, "a postcode", "postal_code")
    if text is None:
        return None
    match = _UK_POSTCODE.match(text.upper())
    # A UK postcode is written in capitals with one space; anything else is kept as given.
    return f"{match.group(1)} {match.group(2)}" if match else text


@transform(
    "address_lines_to_address",
    output="Address",
    args={
        "use": Arg(str, "home", choices=ADDRESS_USES, help="Address.use"),
        "type": Arg(str, None, choices=("postal", "physical", "both"), help="Address.type"),
    },
    parts=("lines", "city", "district", "postal_code", "country"),
)
def address_lines_to_address(
    value: Any, args: Mapping[str, Any], ctx: TransformContext
) -> dict[str, Any] | None:
    """Build an Address from lines (text, a list, or comma-separated) and named parts."""
    parts: Mapping[str, Any] = value if isinstance(value, Mapping) else {"lines": value}
    raw_lines = parts.get("lines")
    if isinstance(raw_lines, str):
        raw_lines = raw_lines.split(",")
    lines = [
        line
        for line in (_one_line(v, "an address line", "lines") for v in _as_list(raw_lines))
        if line
    ]
    address: dict[str, Any] = {"use": args["use"]}
    if args["type"]:
        address["type"] = args["type"]
    if lines:
        address["line"] = lines
    for part, element in (("city", "city"), ("district", "district"), ("country", "country")):
        text = _one_line(parts.get(part), f"the {part}", part)
        if text:
            address[element] = text
    postcode = _postcode(parts.get("postal_code"))
    if postcode:
        address["postalCode"] = postcode
    return address if len(address) > 1 + bool(args["type"]) else None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


TELECOM_USES = ("home", "work", "temp", "old", "mobile")
TELECOM_SYSTEMS = ("phone", "fax", "email", "pager", "url", "sms", "other")
_PHONE = re.compile(r"^\+?[0-9 ()\-.]+$")


@transform(
    "phone_to_telecom",
    output="ContactPoint",
    args={
        "use": Arg(str, "home", choices=TELECOM_USES, help="ContactPoint.use"),
        "system": Arg(str, "phone", choices=TELECOM_SYSTEMS, help="ContactPoint.system"),
    },
)
def phone_to_telecom(
    value: Any, args: Mapping[str, Any], ctx: TransformContext
) -> dict[str, Any] | None:
    """Build a ContactPoint from a number or address; a number without 6 digits is dropped."""
    text = _one_line(value, "a telephone number", "value")
    if text is None:
        return None
    if args["system"] in ("phone", "fax", "sms", "pager"):
        digits = sum(ch.isdigit() for ch in text)
        if not _PHONE.match(text) or digits < 6:
            # "unknown", "ex-directory": not a number, and not worth failing the record for.
            ctx.warn("is not a telephone number; left out")
            return None
    return {"system": args["system"], "value": text, "use": args["use"]}


# -- identifiers and codes ----------------------------------------------------------------


@transform("nhs_number_to_identifier", output="Identifier", config=("invalid_nhs_number_system",))
def nhs_number_to_identifier(
    value: Any, args: Mapping[str, Any], ctx: TransformContext
) -> dict[str, Any]:
    """Identify by NHS number; an invalid one is kept under a local system and flagged."""
    text = _text(value, "an NHS number").strip()
    reason = nhs_number.invalid_reason(text)
    if reason is None:
        return {"system": nhs_number.NHS_NUMBER_SYSTEM, "value": nhs_number.normalise(text)}
    system = ctx.config["invalid_nhs_number_system"]
    ctx.warn(f"is not a valid NHS number ({reason}); kept as an identifier under {system}")
    return {"system": system, "value": _SPACES.sub(" ", text)}


IDENTIFIER_USES = ("usual", "official", "temp", "secondary", "old")


@transform(
    "value_to_identifier",
    output="Identifier",
    args={
        "system": Arg(str, required=True, help="Identifier.system URI (often $config.…)"),
        "use": Arg(str, None, choices=IDENTIFIER_USES, help="Identifier.use"),
    },
)
def value_to_identifier(
    value: Any, args: Mapping[str, Any], ctx: TransformContext
) -> dict[str, Any]:
    """Build an Identifier from a source id and a system URI."""
    identifier: dict[str, Any] = {"system": args["system"], "value": _text(value, "an id")}
    if args["use"]:
        identifier["use"] = args["use"]
    return identifier


@transform(
    "code_to_coding",
    output="Coding",
    args={"system": Arg(str, required=True, help="Coding.system URI")},
    parts=("code", "display"),
)
def code_to_coding(value: Any, args: Mapping[str, Any], ctx: TransformContext) -> dict[str, Any]:
    """Build a Coding from a code (or code and display) and a system URI, without mapping it."""
    parts = value if isinstance(value, Mapping) else {"code": value}
    code = _one_line(parts.get("code"), "a code", "code")
    if code is None:
        raise TransformError("has no code", part="code")
    coding: dict[str, Any] = {"system": args["system"], "code": code}
    display = _one_line(parts.get("display"), "a display", "display")
    if display:
        coding["display"] = display
    return coding


# ICD-10 as feeds send it (R296, R29.6, I10X, S72.00): a category (a letter and two
# digits), then up to two characters of subdivision; X only fills a place.
_ICD10 = re.compile(r"^([A-Z][0-9]{2})\.?([0-9A-Z]{0,2})$")


@transform(
    "icd10_to_coding",
    output="Coding",
    args={"system": Arg(str, required=True, help="Coding.system URI of the ICD-10 edition")},
    parts=("code", "display"),
)
def icd10_to_coding(value: Any, args: Mapping[str, Any], ctx: TransformContext) -> dict[str, Any]:
    """Build a Coding from an ICD-10 code written with or without its dot (R296 → R29.6)."""
    parts = value if isinstance(value, Mapping) else {"code": value}
    code = _one_line(parts.get("code"), "an ICD-10 code", "code")
    if code is None:
        raise TransformError("has no code", part="code")
    match = _ICD10.match(code.upper().replace(" ", ""))
    if match is None:
        raise TransformError(f"{code!r} is not an ICD-10 code (e.g. R29.6 or R296)", part="code")
    category, subdivision = match.group(1), match.group(2).rstrip("X")
    # Only a filler X may follow a category directly ("I10X"); a letter in the
    # subdivision otherwise is not ICD-10.
    if not subdivision.isdigit() and subdivision:
        raise TransformError(f"{code!r} is not an ICD-10 code (e.g. R29.6 or R296)", part="code")
    coding: dict[str, Any] = {
        "system": args["system"],
        "code": f"{category}.{subdivision}" if subdivision else category,
    }
    display = _one_line(parts.get("display"), "a display", "display")
    if display:
        coding["display"] = display
    return coding


_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


@transform("flag_to_boolean", output="boolean")
def flag_to_boolean(value: Any, args: Mapping[str, Any], ctx: TransformContext) -> bool:
    """Read true/false, Y/N, yes/no or 1/0 (any case) as a boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise TransformError("is not a yes/no value (true/false, Y/N, yes/no, 1/0)")
