"""Build HL7 v2.4 ADT segments (HL7 UK / ITK style) as plain strings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from bridge.synth import vocab as v
from bridge.synth.population import Address, Carer, Demographics, Person, Practice, Worker
from bridge.synth.timefmt import hl7_ts

SEGMENT_SEPARATOR = "\r"
# Replaced by the final, chronological control id when the batch files are written.
CONTROL_ID_PLACEHOLDER = "@CTRL@"
_ESCAPES = str.maketrans({"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"})

# Message structure per trigger event (HL7 v2.4 chapter 3).
STRUCTURES = {
    "A01": "ADT_A01",
    "A02": "ADT_A02",
    "A03": "ADT_A03",
    "A08": "ADT_A01",
    "A28": "ADT_A05",
    "A31": "ADT_A05",
    "A40": "ADT_A39",
}


def esc(text: str | None) -> str:
    """Escape HL7 delimiters in a text value (``&`` becomes ``\\T\\`` and so on)."""
    return text.translate(_ESCAPES) if text else ""


def comps(*parts: str) -> str:
    """Join already-escaped components with ``^``, dropping trailing empty ones."""
    n = len(parts)
    while n and not parts[n - 1]:
        n -= 1
    return "^".join(parts[:n])


def segment(name: str, fields: list[str]) -> str:
    """Return a segment from its fields (index 1 = field 1), dropping trailing empty fields."""
    n = len(fields)
    while n and not fields[n - 1]:
        n -= 1
    return "|".join([name, *fields[:n]])


def _fields(size: int) -> list[str]:
    """Return an empty field list with 1-based indexes up to ``size``."""
    return [""] * (size + 1)


def msh(at: datetime, trigger: str) -> str:
    """Return the MSH segment; the control id is filled in when the batch is written."""
    return (
        f"MSH|^~\\&|{v.SENDING_APP}|{v.TRUST_CODE}|{v.RECEIVING_APP}|{v.RECEIVING_APP}|"
        f"{hl7_ts(at)}||ADT^{trigger}^{STRUCTURES[trigger]}|{CONTROL_ID_PLACEHOLDER}|P|2.4|||"
        "AL|NE|GBR|UNICODE UTF-8"
    )


def evn(trigger: str, recorded: datetime, occurred: datetime | None = None) -> str:
    """Return the EVN segment."""
    f = _fields(6)
    f[1] = trigger
    f[2] = hl7_ts(recorded)
    f[6] = hl7_ts(occurred) if occurred else ""
    return segment("EVN", f[1:])


def xad(a: Address) -> str:
    """Return an XAD home address ``street^other^town^county^postcode^^H``."""
    return comps(
        esc(a.line1), esc(a.locality), esc(a.town), esc(a.county), esc(a.postcode), "", "H"
    )


def xcn(w: Worker | Practice) -> str:
    """Return an XCN for a clinician: ``id^FAMILY^GIVEN^^^DR``."""
    if isinstance(w, Practice):
        return comps(w.gp_code, esc(w.gp_family), esc(w.gp_given), "", "", "DR")
    return comps(w.worker_id, esc(w.family), esc(w.given), "", "", "DR")


def pid(
    person: Person,
    demo: Demographics,
    mrn: str,
    *,
    nhs_number: str | None,
    nhs_status: str,
) -> str:
    """Return the PID segment: identifiers, names, birth date, sex, address, phones."""
    f = _fields(32)
    f[1] = "1"
    ids = []
    if nhs_number:
        ids.append(comps(nhs_number, "", "", "NHS", "NH"))
    ids.append(comps(mrn, "", "", v.TRUST_CODE, "MR"))
    f[3] = "~".join(ids)
    names = [comps(esc(demo.family), esc(demo.given), esc(demo.middle), "", esc(demo.title))]
    if demo.preferred and demo.preferred != demo.given:
        # HL7 table 0200 name type N: the name the person likes to be called.
        names.append(comps(esc(demo.family), esc(demo.preferred), "", "", "", "", "N"))
    f[5] = "~".join(names)
    f[7] = f"{demo.dob:%Y%m%d}"
    f[8] = demo.sex
    f[11] = xad(demo.address)
    phones = []
    if demo.phone_home:
        phones.append(comps(demo.phone_home, "PRN", "PH"))
    if demo.phone_mobile:
        phones.append(comps(demo.phone_mobile, "ORN", "CP"))
    f[13] = "~".join(phones)
    f[15] = comps(person.language, v.LANGUAGE_NAMES[person.language])
    f[16] = person.marital
    f[22] = comps(person.ethnicity[0], esc(person.ethnicity[1]))
    # HL7 UK carries the NHS NUMBER STATUS INDICATOR CODE in PID-32 (identity reliability).
    f[32] = nhs_status
    return segment("PID", f[1:])


def pd1(practice: Practice) -> str:
    """Return PD1 naming the registered GP practice (ODS code in XON-3) and the GP."""
    f = _fields(4)
    f[3] = comps(esc(practice.name), "", practice.ods_code)
    f[4] = xcn(practice)
    return segment("PD1", f[1:])


def nk1(carer: Carer, address: Address) -> str:
    """Return NK1 for the next of kin (the unpaid carer where there is one)."""
    f = _fields(7)
    f[1] = "1"
    f[2] = comps(esc(carer.family), esc(carer.given))
    f[3] = comps(carer.hl7_code, esc(carer.hl7_text))
    f[4] = xad(address) if carer.lives_with else ""
    f[5] = comps(carer.phone, "PRN", "CP" if carer.phone.startswith("07") else "PH")
    f[7] = comps("N", "Next-of-Kin")
    return segment("NK1", f[1:])


@dataclass(slots=True)
class Visit:
    """An episode in a community bed, urgent treatment centre or outpatient clinic."""

    visit_number: str
    patient_class: str
    ward: str
    room: str
    bed: str
    admission_type: str
    attending: Worker
    admit_source: str
    admit_time: datetime
    discharge_time: datetime | None = None
    disposition: str = ""
    prior_ward: tuple[str, str, str] | None = None
    expected_discharge: date | None = None
    diagnosis: tuple[str, str] | None = None


def pv1_not_applicable() -> str:
    """Return the PV1 an A28/A31 carries when there is no visit (patient class N)."""
    return "PV1|1|N"


def pv1(visit: Visit, *, discharged: bool) -> str:
    """Return PV1 for a visit; discharge fields only when ``discharged``."""
    f = _fields(45)
    f[1] = "1"
    f[2] = visit.patient_class
    f[3] = comps(visit.ward, visit.room, visit.bed, v.TRUST_CODE)
    f[4] = visit.admission_type
    if visit.prior_ward:
        f[6] = comps(*visit.prior_ward, v.TRUST_CODE)
    f[7] = xcn(visit.attending)
    f[14] = visit.admit_source
    f[19] = comps(visit.visit_number, "", "", v.TRUST_CODE, "VN")
    f[44] = hl7_ts(visit.admit_time)
    if discharged and visit.discharge_time:
        f[36] = visit.disposition
        f[45] = hl7_ts(visit.discharge_time)
    return segment("PV1", f[1:])


def pv2(expected_discharge: date) -> str:
    """Return PV2 with the expected discharge date (PV2-9)."""
    f = _fields(9)
    f[9] = f"{expected_discharge:%Y%m%d}"
    return segment("PV2", f[1:])


def dg1(code: str, text: str, diagnosis_type: str, at: datetime) -> str:
    """Return DG1 with an ICD-10 code (DG1-3), its time and type (A admitting, W working)."""
    f = _fields(6)
    f[1] = "1"
    f[3] = comps(code, esc(text), "I10")
    f[5] = hl7_ts(at)
    f[6] = diagnosis_type
    return segment("DG1", f[1:])


def mrg(old_mrn: str) -> str:
    """Return MRG naming the duplicate record number merged into the surviving one."""
    return segment("MRG", [comps(old_mrn, "", "", v.TRUST_CODE, "MR")])


def message(segments: list[str]) -> str:
    """Join segments into one message (segments separated by carriage return)."""
    return SEGMENT_SEPARATOR.join(segments)
