"""Parse HL7 v2 ADT messages fast, into the JSON shape mapping specs address.

The hot path is a hand-written splitter (separators from MSH-1/MSH-2, escape sequences
decoded, values kept as raw strings): it parses the sample ADT messages well over 10,000
times per second per core, where hl7apy's element tree manages about 100. hl7apy is used
only for the optional structure check (``strict=True``, see :mod:`adapters.chs.strict`).

The shape of :attr:`ParsedMessage.fields` is documented in ``docs/adapters-chs.md``.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, Final

from adapters.base import AdapterError, SourceRecord

SYSTEM: Final = "chs"
DEFAULT_MAX_MESSAGE_BYTES: Final = 1024 * 1024
SUPPORTED_VERSIONS: Final = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")

# HL7 table 0354 (message structure) per trigger event. Before v2.4 the ADT_A05 structure
# did not exist: A05, A28 and A31 used ADT_A01's.
_STRUCTURES_24: Final = {
    "A01": "ADT_A01",
    "A02": "ADT_A02",
    "A03": "ADT_A03",
    "A04": "ADT_A01",
    "A05": "ADT_A05",
    "A08": "ADT_A01",
    "A11": "ADT_A09",
    "A13": "ADT_A01",
    "A28": "ADT_A05",
    "A31": "ADT_A05",
    "A34": "ADT_A30",
    "A40": "ADT_A39",
}
_STRUCTURES_23: Final = {**_STRUCTURES_24, "A05": "ADT_A01", "A28": "ADT_A01", "A31": "ADT_A01"}
SUPPORTED_EVENTS: Final = tuple(_STRUCTURES_24)

# Segments that may occur more than once in the supported ADT structures are lists in
# ``fields``; every other standard segment is a single dict. Z-segments are always lists.
REPEATING_SEGMENTS: Final = frozenset(
    {"NK1", "DG1", "AL1", "OBX", "NTE", "ROL", "PR1", "GT1", "IN1", "IN2", "IN3", "DB1", "ARV"}
    | {"ERR", "SFT"}  # ACKs and v2.5 headers
)
# Every standard segment id of HL7 v2.3 to v2.5.1 (the union of hl7apy's tables; a test
# keeps the two equal). Written out so the hot path never loads hl7apy: its tables add
# about 50,000 objects for the garbage collector to walk, which slows every parse.
STANDARD_SEGMENTS: Final = frozenset(
    (
        "ABS ACC ADD AFF AIG AIL AIP AIS AL1 APR ARQ AUT BHS BLC BLG BPO BPX BTS BTX CDM CER CM0 "
        "CM1 CM2 CNS CON CSP CSR CSS CTD CTI DB1 DG1 DRG DSC DSP ECD ECR EDU EQL EQP EQU ERQ ERR "
        "EVN FAC FHS FT1 FTS GOL GP1 GP2 GT1 IAM IIM IN1 IN2 IN3 INV IPC ISD LAN LCC LCH LDP LOC "
        "LRL MFA MFE MFI MRG MSA MSH NCK NDS NK1 NPU NSC NST NTE OBR OBX ODS ODT OM1 OM2 OM3 OM4 "
        "OM5 OM6 OM7 ORC ORG OVR PCR PD1 PDA PDC PEO PES PID PR1 PRA PRB PRC PRD PSH PTH PV1 PV2 "
        "QAK QID QPD QRD QRF QRI RCP RDF RDT RF1 RGS RMI ROL RQ1 RQD RXA RXC RXD RXE RXG RXO RXR "
        "SAC SCH SFT SID SPM SPR STF TCC TCD TQ1 TQ2 TXA UB1 UB2 URD URS VAR VTQ"
    ).split()
)
# Batch wrappers are handled by read_batch, never inside one message.
BATCH_SEGMENTS: Final = frozenset({"FHS", "BHS", "BTS", "FTS"})

# HL7 table 0357 (message error condition codes) used in ERR segments.
SEGMENT_SEQUENCE_ERROR: Final = 100
REQUIRED_FIELD_MISSING: Final = 101
DATA_TYPE_ERROR: Final = 102
UNSUPPORTED_MESSAGE_TYPE: Final = 200
UNSUPPORTED_EVENT: Final = 201
UNSUPPORTED_VERSION: Final = 203
APPLICATION_INTERNAL_ERROR: Final = 207
CONDITION_TEXT: Final = {
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT: "Unsupported event code",
    UNSUPPORTED_VERSION: "Unsupported version id",
    APPLICATION_INTERNAL_ERROR: "Application internal error",
}

# HL7 table 0211 (alternate character sets) → Python codec. Empty MSH-18 means UTF-8 here:
# it is a superset of HL7's default ASCII and what HL7 UK feeds send.
_CHARSETS: Final = {
    "": "utf-8",
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "ISO IR192": "utf-8",
    "UNICODE": "utf-8",
    "8859/1": "latin-1",
    "ISO IR100": "latin-1",
    **{f"8859/{n}": f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 9, 15)},
}

_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
# C0 controls other than TAB, LF and CR (and DEL): bytes no HL7 text carries; MLLP's VT and
# FS land here too when a frame was cut badly.
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TS = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?"
    r"([+-]\d{4})?\Z"
)
# Position keys "0".."999" made once: str(i) per field costs more than the lookup.
_NKEYS: Final = 1000
_KEYS: Final = tuple(str(i) for i in range(_NKEYS))
_COMPONENT_KEYS: Final = _KEYS[1:]
# Field keys of a segment's parts[1:]: from "1", or from "3" for MSH (MSH-1/2 are special).
_FIELD_KEYS: Final = _KEYS[1:]
_MSH_KEYS: Final = _KEYS[3:]


class Hl7Error(AdapterError):
    """An HL7 message that cannot be accepted; ``field`` names the position (``PID-3``).

    ``condition`` is the HL7 table 0357 code an ACK reports in ERR; ``reject`` is true when
    the fault is in the message header (type, event, version, separators, control id), so
    the message is rejected (AR/CR) rather than failed in processing (AE/CE).
    """

    def __init__(
        self,
        reason: str,
        *,
        field: str | None = None,
        condition: int = DATA_TYPE_ERROR,
        reject: bool = False,
        raw: bytes = b"",
        origin: str = "",
    ) -> None:
        super().__init__(reason, field=field, raw=raw, origin=origin)
        self.condition = condition
        self.reject = reject

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{where}{self.reason}"


@dataclass(frozen=True, slots=True)
class Separators:
    """The message's delimiters, from MSH-1 and MSH-2; an absent one is ``""``."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def encoding_characters(self) -> str:
        """Return MSH-2 as it must be written for these separators."""
        return self.component + self.repetition + self.escape + self.subcomponent


DEFAULT_SEPARATORS: Final = Separators()


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """What an MSH says, as far as it could be read; unknown parts are ``""``.

    ``msh`` holds the raw (still escaped) MSH fields by position (``msh[3]`` is MSH-3),
    so an ACK can echo them exactly; the other attributes are decoded first components.
    """

    separators: Separators
    msh: tuple[str, ...]
    message_type: str = ""
    event: str = ""
    structure: str = ""
    control_id: str = ""
    processing_id: str = ""
    version: str = ""
    datetime: str = ""
    accept_ack_type: str = ""
    application_ack_type: str = ""
    charset: str = ""

    def raw_field(self, position: int) -> str:
        """Return MSH-``position`` as written (escaped), ``""`` when absent."""
        return self.msh[position] if position < len(self.msh) else ""


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """One parsed ADT message: its header, its fields (JSON-shaped) and its bytes."""

    header: MessageHeader
    fields: dict[str, Any]
    raw: bytes
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """Return the record kind mapping specs key on (``adt_a01``)."""
        return f"adt_{self.header.event.lower()}"

    @property
    def control_id(self) -> str:
        """Return MSH-10, the id the message is deduplicated by."""
        return self.header.control_id

    def to_record(self, origin: str = "") -> SourceRecord:
        """Return the message as a :class:`SourceRecord` of system ``chs``."""
        return SourceRecord(
            system=SYSTEM,
            kind=self.kind,
            id=self.header.control_id,
            version=self.meta.get("message_datetime") or self.meta.get("event_datetime"),
            fields=self.fields,
            raw=self.raw,
            origin=origin,
            meta=self.meta,
        )


# --- escape sequences -------------------------------------------------------------------


@cache
def _escape_pattern(escape: str) -> re.Pattern[str]:
    """Return the pattern of one escape sequence for this escape character."""
    e = re.escape(escape)
    return re.compile(f"{e}([^{e}\r\n]*){e}")


@cache
def _escape_table(seps: Separators) -> dict[str, str]:
    """Return what each fixed escape sequence stands for with these separators."""
    return {
        "F": seps.field,
        "S": seps.component,
        "T": seps.subcomponent,
        "R": seps.repetition,
        "E": seps.escape,
        "H": "",
        "N": "",
        ".br": "\n",
        ".sp": "\n",
        ".fi": "",
        ".nf": "",
    }


def _hex(text: str, codec: str) -> str | None:
    """Decode the hex digits of ``\\Xhh..\\`` in the message's character set."""
    try:
        return bytes.fromhex(text).decode(codec)
    except (ValueError, UnicodeDecodeError):
        return None


def unescape(value: str, seps: Separators, codec: str = "utf-8") -> str:
    """Decode HL7 escape sequences (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh\\ \\.br\\``).

    Highlighting (``\\H\\ \\N\\``) and layout hints other than line breaks are dropped;
    sequences this parser does not know (character set switches, ``\\Z..\\``) are kept as
    written so nothing is silently lost.
    """
    if not seps.escape or seps.escape not in value:
        return value
    table = _escape_table(seps)

    def one(match: re.Match[str]) -> str:
        seq = match.group(1)
        out = table.get(seq)
        if out is not None:
            return out
        if seq[:1] == "X" and len(seq) > 1:
            decoded = _hex(seq[1:], codec)
            if decoded is not None:
                return decoded
        elif seq[:3] in (".sp", ".in", ".ti", ".sk", ".ce"):
            return "\n" if seq[:3] == ".sp" else ""
        return match.group(0)

    return _escape_pattern(seps.escape).sub(one, value)


def escape(value: str, seps: Separators = DEFAULT_SEPARATORS) -> str:
    """Escape the separators (and CR/LF) in a text value for writing into a message."""
    if not seps.escape:
        return value
    e = seps.escape
    out = value.replace(e, f"{e}E{e}")
    for char, code in (
        (seps.field, "F"),
        (seps.component, "S"),
        (seps.subcomponent, "T"),
        (seps.repetition, "R"),
    ):
        if char:
            out = out.replace(char, f"{e}{code}{e}")
    return out.replace("\r", f"{e}X0D{e}").replace("\n", f"{e}X0A{e}")


# --- dates --------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def hl7_datetime_to_iso(value: str) -> str | None:
    """Return an HL7 TS/DTM value as ISO 8601 at its own precision, or None if malformed.

    ``20251206142000+0000`` → ``2025-12-06T14:20:00+00:00``; ``20231108`` →
    ``2023-11-08``; no offset in the value, none in the result (sender's local time).
    Fractions of a second are written with six digits.
    """
    m = _TS.match(value)
    if not m:
        return None
    year, month, day, hour, minute, second, frac, offset = m.groups()
    if offset and (int(offset[1:3]) > 23 or int(offset[3:]) > 59):
        return None
    if month is None:
        return year
    if not 1 <= int(month) <= 12:
        return None
    if day is None:
        return f"{year}-{month}"
    d = int(day)
    if d < 1 or (d > 28 and d > monthrange(int(year), int(month))[1]):
        return None
    if hour is None:
        return f"{year}-{month}-{day}"
    if int(hour) > 23 or (minute and int(minute) > 59) or (second and int(second) > 59):
        return None
    out = f"{year}-{month}-{day}T{hour}:{minute or '00'}"
    if second:
        out += f":{second}"
        if frac:
            out += "." + frac.ljust(6, "0")
    if offset:
        out += f"{offset[:3]}:{offset[3:]}"
    return out


# --- the splitter -------------------------------------------------------------------------


def _components(rep: str, seps: Separators, codec: str) -> dict[str, str]:
    """Return one repetition as ``{"1": …, "4": …, "4_2": …}`` (empty ones left out)."""
    cs, ss, es = seps.component, seps.subcomponent, seps.escape
    out: dict[str, str] = {}
    parts = rep.split(cs) if cs in rep else (rep,)
    for i, comp in enumerate(parts, 1):
        if not comp:
            continue
        key = _KEYS[i] if i < _NKEYS else str(i)
        if ss and ss in comp:
            for j, sub in enumerate(comp.split(ss), 1):
                if sub:
                    value = unescape(sub, seps, codec) if es and es in sub else sub
                    out[key if j == 1 else f"{key}_{j}"] = value
        else:
            out[key] = unescape(comp, seps, codec) if es and es in comp else comp
    return out


def _field(raw: str, seps: Separators, codec: str) -> list[dict[str, str]]:
    """Return one field as its list of repetitions (trailing empty ones dropped)."""
    rs = seps.repetition
    if rs and rs in raw:
        reps = [_components(r, seps, codec) if r else {} for r in raw.split(rs)]
        while reps and not reps[-1]:
            reps.pop()
        return reps
    comps = _components(raw, seps, codec)
    return [comps] if comps else []


def _segment_fields(
    parts: list[str], keys: tuple[str, ...], seps: Separators, codec: str
) -> dict[str, Any]:
    """Return a segment's non-empty fields, ``parts[k]`` (k ≥ 1) keyed by ``keys[k - 1]``.

    Most fields hold no repetition, escape or subcomponent: they take a shortcut that
    splits components in one comprehension, which is where the parser's speed comes from.
    """
    if len(parts) > len(keys):
        keys = tuple(str(int(keys[0]) + i) for i in range(len(parts)))
    out: dict[str, Any] = {}
    ckeys = _COMPONENT_KEYS
    cs = seps.component
    # An absent separator is replaced by CR, which a segment can never contain.
    rs = seps.repetition or "\r"
    es = seps.escape or "\r"
    ss = seps.subcomponent or "\r"
    for key, raw in zip(keys, parts[1:], strict=False):
        if not raw:
            continue
        if rs in raw or es in raw or ss in raw:
            value: Any = _field(raw, seps, codec)
            if not value:
                continue
        elif cs in raw:
            split = raw.split(cs)
            if len(split) < _NKEYS:
                comps = {k: c for k, c in zip(ckeys, split, strict=False) if c}
            else:
                comps = _components(raw, seps, codec)
            if not comps:
                continue
            value = [comps]
        else:
            value = [{"1": raw}]
        out[key] = value
    return out


def _first(fields: Mapping[str, Any], position: str, component: str = "1") -> str:
    """Return a field's first repetition's component (``""`` when absent)."""
    reps = fields.get(position)
    return reps[0].get(component, "") if reps else ""


# --- header -------------------------------------------------------------------------------


def _separators_from(msh: bytes | str) -> Separators | tuple[str, str]:
    """Return the separators MSH-1/MSH-2 declare, or the reason they are unusable."""
    text = msh.decode("latin-1") if isinstance(msh, bytes) else msh
    # Only MSH-1 and MSH-2 matter, and an MSH-2 longer than 5 characters is refused either
    # way, so the first 10 characters decide: cache on them (feeds never change separators).
    return _separators_cached(text[:10])


@lru_cache(maxsize=64)
def _separators_cached(text: str) -> Separators | tuple[str, str]:
    """Return the separators the start of an MSH declares, or (position, what is wrong)."""
    if len(text) < 5:
        return "MSH-2", "MSH is too short to hold MSH-1 and MSH-2"
    fs = text[3]
    end = text.find(fs, 4)
    enc = (text[4:] if end < 0 else text[4:end]).rstrip("\r\n")
    unusable = {"\r", "\n", " ", "\t"}
    if fs.isalnum() or fs in unusable or not fs.isprintable():
        return "MSH-1", f"field separator {fs!r} is not usable (a printable symbol is)"
    if not 1 <= len(enc) <= 5:
        return "MSH-2", f"{enc!r} must hold 1 to 5 encoding characters (^~\\& by default)"
    for ch in enc:
        if ch.isalnum() or ch in unusable or not ch.isprintable() or ch == fs:
            return "MSH-2", f"encoding character {ch!r} is not usable"
    if len(set(enc)) != len(enc):
        return "MSH-2", f"{enc!r} repeats a character"
    # A fifth character (v2.7's truncation character) is allowed and ignored.
    return Separators(
        field=fs,
        component=enc[0],
        repetition=enc[1:2],
        escape=enc[2:3],
        subcomponent=enc[3:4],
    )


def _first_segment_end(data: bytes, start: int) -> int:
    """Return the index where the segment starting at ``start`` ends."""
    ends = [i for i in (data.find(b"\r", start), data.find(b"\n", start)) if i >= 0]
    return min(ends) if ends else len(data)


def _header_from_fields(
    seps: Separators, msh_raw: tuple[str, ...], msh: Mapping[str, Any]
) -> MessageHeader:
    """Return the header attributes read from a parsed MSH."""
    reps = msh.get("9")
    msh9 = reps[0] if reps else {}
    return MessageHeader(
        separators=seps,
        msh=msh_raw,
        message_type=msh9.get("1", ""),
        event=msh9.get("2", ""),
        structure=msh9.get("3", ""),
        control_id=_first(msh, "10"),
        processing_id=_first(msh, "11"),
        version=_first(msh, "12"),
        datetime=_first(msh, "7"),
        accept_ack_type=_first(msh, "15"),
        application_ack_type=_first(msh, "16"),
        charset=_first(msh, "18"),
    )


def _msh_raw(fs: str, text: str) -> tuple[str, ...]:
    """Return MSH's raw fields by position (index 1 is MSH-1, the field separator)."""
    parts = text.split(fs)
    return ("MSH", fs, *parts[1:])


def _msh_fields(raw: tuple[str, ...], seps: Separators, codec: str) -> dict[str, Any]:
    """Return MSH as ``fields`` holds it: MSH-1 and MSH-2 verbatim, the rest split."""
    out: dict[str, Any] = {"1": [{"1": raw[1]}]}
    if len(raw) > 2 and raw[2]:
        out["2"] = [{"1": raw[2]}]
    rest = _segment_fields(["MSH", *raw[3:]], _MSH_KEYS, seps, codec)
    out.update(rest)
    return out


def salvage_header(data: bytes) -> MessageHeader:
    """Read whatever MSH fields can be read from bytes that may not parse; never raises.

    Used to acknowledge a message too broken to parse (AR/CR): separators fall back to the
    defaults when MSH-1/MSH-2 are unusable, and missing fields are ``""``.
    """
    try:
        head = data[:65536]
        start = head.find(b"MSH")
        if start < 0:
            return MessageHeader(separators=DEFAULT_SEPARATORS, msh=())
        end = _first_segment_end(head, start)
        text = head[start:end].decode("utf-8", errors="replace")
        found = _separators_from(text)
        if not isinstance(found, Separators):
            return MessageHeader(separators=DEFAULT_SEPARATORS, msh=())
        raw = _msh_raw(found.field, text)
        fields = _msh_fields(raw, found, "utf-8")
        return _header_from_fields(found, raw, fields)
    except Exception:  # an ACK must be buildable from anything
        return MessageHeader(separators=DEFAULT_SEPARATORS, msh=())


# --- the parser ---------------------------------------------------------------------------


def known_segments() -> frozenset[str]:
    """Return every standard segment id of HL7 v2.3 to v2.5.1."""
    return STANDARD_SEGMENTS


@cache
def _segment_kinds() -> tuple[frozenset[str], frozenset[str]]:
    """Return the segment ids kept as one dict and those kept as a list (Z-segments aside)."""
    allowed = known_segments() - BATCH_SEGMENTS - {"MSH"}
    return allowed - REPEATING_SEGMENTS, allowed & REPEATING_SEGMENTS


def _segment_error(n: int, seg: str, fs: str) -> Hl7Error:
    """Return the error for segment ``n``, which is not one a message may hold."""
    sid = seg[:3]
    if (len(seg) > 3 and seg[3] != fs) or not _SEGMENT_ID.match(sid):
        return Hl7Error(
            f"segment {n} does not start with a segment id and {fs!r}: {seg[:12]!r}",
            field=f"segment {n}",
            condition=SEGMENT_SEQUENCE_ERROR,
        )
    if sid == "MSH":
        return Hl7Error(
            f"segment {n} starts a second message; send one message at a time",
            field="MSH",
            condition=SEGMENT_SEQUENCE_ERROR,
        )
    if sid in BATCH_SEGMENTS:
        return Hl7Error(
            f"segment {n} is a batch {sid}; read batch files with read_batch",
            field=sid,
            condition=SEGMENT_SEQUENCE_ERROR,
        )
    return Hl7Error(
        f"segment {n} has the unknown id {sid!r} (only Z-segments may be site-defined)",
        field=sid,
        condition=SEGMENT_SEQUENCE_ERROR,
    )


def structure_for(event: str, version: str) -> str:
    """Return the HL7 message structure (table 0354) of an ADT event in a version."""
    table = _STRUCTURES_23 if version in ("2.3", "2.3.1") else _STRUCTURES_24
    return table.get(event, "")


def _decode(
    data: bytes, max_bytes: int
) -> tuple[bytes, str, Separators, str, str, list[str], MessageHeader, dict[str, Any]]:
    """Return the message's bytes, text, separators, codec, charset, segments and MSH."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise Hl7Error("a message must be bytes", condition=DATA_TYPE_ERROR, reject=True)
    data = bytes(data)
    if len(data) > max_bytes:
        raise Hl7Error(
            f"message is {len(data):,} bytes; the limit is {max_bytes:,}",
            condition=DATA_TYPE_ERROR,
            reject=True,
        )
    body = data.strip()
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:].lstrip()
    if not body:
        raise Hl7Error(
            "message is empty", field="MSH", condition=SEGMENT_SEQUENCE_ERROR, reject=True
        )
    if not body.startswith(b"MSH"):
        first = body[:3].decode("ascii", errors="replace")
        where = "message has no MSH segment" if b"MSH" not in body else "MSH is not first"
        raise Hl7Error(
            f"{where} (it starts with {first!r}); every message must start with MSH",
            field="MSH",
            condition=SEGMENT_SEQUENCE_ERROR,
            reject=True,
        )
    msh_end = _first_segment_end(body, 0)
    found = _separators_from(body[:msh_end])
    if not isinstance(found, Separators):
        raise Hl7Error(found[1], field=found[0], condition=DATA_TYPE_ERROR, reject=True)
    seps = found
    fs = seps.field

    # The character set (MSH-18) decides how the bytes decode, so read it from bytes first.
    msh_bytes = body[:msh_end].split(fs.encode("latin-1"))
    charset_raw = msh_bytes[17].decode("latin-1") if len(msh_bytes) > 17 else ""
    if seps.repetition:
        charset_raw = charset_raw.split(seps.repetition)[0]
    charset = charset_raw.split(seps.component)[0].strip().upper() if charset_raw else ""
    codec = _CHARSETS.get(charset)
    if codec is None:
        raise Hl7Error(
            f"character set {charset!r} is not supported; use UNICODE UTF-8, ASCII or 8859/n",
            field="MSH-18",
            condition=DATA_TYPE_ERROR,
            reject=True,
        )
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        raise Hl7Error(
            f"byte {exc.start} is not valid {codec} (declare the character set in MSH-18)",
            field="MSH-18",
            condition=DATA_TYPE_ERROR,
            reject=True,
        ) from None
    bad = _BINARY.search(text)
    if bad:
        raise Hl7Error(
            f"binary data: control character {bad.group()!r} at character {bad.start()}",
            condition=DATA_TYPE_ERROR,
            reject=True,
        )

    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    segments = text.split("\r")
    msh_raw = _msh_raw(fs, segments[0])
    msh = _msh_fields(msh_raw, seps, codec)
    header = _header_from_fields(seps, msh_raw, msh)
    return data, text, seps, codec, charset, segments, header, msh


def _body(segments: list[str], seps: Separators, codec: str, msh: dict[str, Any]) -> dict[str, Any]:
    """Return ``fields``: MSH and every further segment, singles as dicts, others as lists."""
    fs = seps.field
    fields: dict[str, Any] = {"MSH": msh}
    single, repeating = _segment_kinds()
    for n, seg in enumerate(segments[1:], 2):
        sid = seg[:3]
        if len(seg) > 3 and seg[3] != fs:
            sid = ""  # not a segment id: let _check_segment say why
        if sid in single:
            if sid in fields:
                raise Hl7Error(
                    f"segment {n} repeats {sid}, which occurs once in an ADT message",
                    field=sid,
                    condition=SEGMENT_SEQUENCE_ERROR,
                )
            fields[sid] = _segment_fields(seg.split(fs), _FIELD_KEYS, seps, codec)
        elif sid in repeating or (sid[:1] == "Z" and _SEGMENT_ID.match(sid)):
            content = _segment_fields(seg.split(fs), _FIELD_KEYS, seps, codec)
            fields.setdefault(sid, []).append(content)
        elif seg and not seg.isspace():
            raise _segment_error(n, seg, fs)

    return fields


def split_message(data: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """Split any HL7 v2 message (an ACK, say) into the ``fields`` shape, checking no type.

    Raises :class:`Hl7Error` for what no message may have (no MSH, bad separators,
    binary data, unknown or misplaced segments).
    """
    _data, _text, seps, codec, _charset, segments, _header, msh = _decode(data, max_bytes)
    return _body(segments, seps, codec, msh)


def parse_message(
    data: bytes,
    *,
    strict: bool = False,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> ParsedMessage:
    """Parse one ADT message (bytes, any of CR/LF/CRLF between segments).

    Raises :class:`Hl7Error` naming the position and the reason when the message cannot
    be accepted. ``strict=True`` also checks the structure against the HL7 definition of
    the message's version and event with hl7apy (about 15 ms a message).
    """
    data, text, seps, codec, charset, segments, header, msh = _decode(data, max_bytes)
    _check_header(header)
    fields = _body(segments, seps, codec, msh)

    if "PID" not in fields:
        raise Hl7Error(
            f"required segment PID is missing from ADT^{header.event}",
            field="PID",
            condition=SEGMENT_SEQUENCE_ERROR,
        )

    message_dt = ""
    if header.datetime:
        iso = hl7_datetime_to_iso(header.datetime)
        if iso is None:
            raise Hl7Error(
                f"{header.datetime!r} is not an HL7 date-time (YYYYMMDD[HHMM[SS[.S]]][+ZZZZ])",
                field="MSH-7",
                condition=DATA_TYPE_ERROR,
            )
        message_dt = iso
    evn = fields.get("EVN")
    event_raw = _first(evn, "2") if isinstance(evn, dict) else ""
    event_dt = hl7_datetime_to_iso(event_raw) if event_raw else None

    structure = header.structure or structure_for(header.event, header.version)
    meta = {
        "message_type": header.message_type,
        "event": header.event,
        "structure": structure,
        "control_id": header.control_id,
        "sending_application": _first(msh, "3"),
        "sending_facility": _first(msh, "4"),
        "receiving_application": _first(msh, "5"),
        "receiving_facility": _first(msh, "6"),
        "message_datetime": message_dt or None,
        "event_datetime": event_dt,
        "processing_id": header.processing_id,
        "version": header.version,
        "accept_ack_type": header.accept_ack_type,
        "application_ack_type": header.application_ack_type,
        "charset": charset,
    }
    parsed = ParsedMessage(header=header, fields=fields, raw=data, meta=meta)
    if strict:
        from adapters.chs.strict import check_structure

        check_structure(text, parsed)
    return parsed


def _check_header(h: MessageHeader) -> None:
    """Raise :class:`Hl7Error` unless MSH-9, MSH-10 and MSH-12 say something we accept."""
    if not h.message_type:
        raise Hl7Error(
            "message type is missing (e.g. ADT^A01^ADT_A01)",
            field="MSH-9",
            condition=REQUIRED_FIELD_MISSING,
            reject=True,
        )
    if h.message_type != "ADT":
        raise Hl7Error(
            f"message type {h.message_type!r} is not supported; only ADT is",
            field="MSH-9",
            condition=UNSUPPORTED_MESSAGE_TYPE,
            reject=True,
        )
    if not h.event:
        raise Hl7Error(
            "trigger event (MSH-9.2) is missing",
            field="MSH-9",
            condition=REQUIRED_FIELD_MISSING,
            reject=True,
        )
    if h.event not in _STRUCTURES_24:
        raise Hl7Error(
            f"event ADT^{h.event} is not supported; supported: {', '.join(SUPPORTED_EVENTS)}",
            field="MSH-9",
            condition=UNSUPPORTED_EVENT,
            reject=True,
        )
    if not h.control_id:
        raise Hl7Error(
            "message control id is missing",
            field="MSH-10",
            condition=REQUIRED_FIELD_MISSING,
            reject=True,
        )
    if not h.version:
        raise Hl7Error(
            "version id is missing",
            field="MSH-12",
            condition=REQUIRED_FIELD_MISSING,
            reject=True,
        )
    if h.version not in SUPPORTED_VERSIONS:
        raise Hl7Error(
            f"HL7 version {h.version!r} is not supported; supported: "
            f"{', '.join(SUPPORTED_VERSIONS)}",
            field="MSH-12",
            condition=UNSUPPORTED_VERSION,
            reject=True,
        )


def parse_record(
    data: bytes,
    *,
    origin: str = "",
    strict: bool = False,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> SourceRecord:
    """Parse one message into a :class:`SourceRecord`; raise :class:`Hl7Error` if it cannot.

    The error carries ``raw`` and ``origin`` so it can go to the dead-letter store as is.
    """
    try:
        return parse_message(data, strict=strict, max_bytes=max_bytes).to_record(origin)
    except Hl7Error as exc:
        exc.raw = bytes(data[:max_bytes]) if isinstance(data, bytes | bytearray) else b""
        exc.origin = origin
        raise
