"""Streaming writers: JSON lines, HL7 batch files (externally sorted), bad-row injection."""

from __future__ import annotations

import heapq
import json
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bridge.core.nhs_number import is_valid, normalise
from bridge.synth.hl7 import CONTROL_ID_PLACEHOLDER

HL7_DIR = "chs/adt"
HL7_MESSAGES_PER_FILE = 1000
# Messages sorted in memory before spilling to a run file; bounds memory at any population.
HL7_RUN_SIZE = 50_000

# Every JSON lines file, in manifest order, with what bad-row injection may touch.
# file -> (date fields that a bad date may replace, local code field, may be truncated)
JSONL_FILES: dict[str, tuple[tuple[str, ...], str | None, bool]] = {
    "truth.jsonl": ((), None, False),
    "chs/extracts/referrals.jsonl": (("received_date", "status_date"), "reason_code", True),
    "chs/extracts/contacts.jsonl": (("contact_time",), "contact_type_code", True),
    "chs/extracts/problems.jsonl": (("onset_date", "recorded_date"), "local_code", True),
    "chs/extracts/key_professionals.jsonl": (("start_date",), None, True),
    "chs/extracts/alerts.jsonl": (("start_date", "end_date"), "alert_code", True),
    # Person rows only ever get a bad NHS number: a lost person would break truth.jsonl.
    "asc/persons.jsonl": ((), None, False),
    "asc/contacts.jsonl": (("contact_time", "outcome_date"), "triage_outcome_code", True),
    "asc/assessments.jsonl": (("start_date", "end_date"), "assessment_type_code", True),
    "asc/services.jsonl": (("start_date", "end_date"), "service_code", True),
    "asc/allocations.jsonl": (("start_date", "end_date"), None, True),
    "asc/carers.jsonl": (("carer_assessment_date",), None, True),
    "asc/consents.jsonl": (("decision_date", "valid_until"), None, True),
    "asc/safeguarding.jsonl": (("concern_date", "outcome_date"), "category_code", True),
}
ASC_PERSONS = "asc/persons.jsonl"

BROKEN_JSON = "truncated_json"
BAD_DATE = "invalid_date"
UNKNOWN_CODE = "unknown_local_code"
BAD_NHS_NUMBER = "nhs_number_checksum"
BAD_HL7 = "malformed_hl7"
INVALID_KINDS = (BAD_NHS_NUMBER, BROKEN_JSON, BAD_DATE, UNKNOWN_CODE, BAD_HL7)

# Chance that an eligible row is spoiled: about 1% of all rows overall.
_JSON_RATE = 0.009
_NHS_RATE = 0.01
_HL7_RATE = 0.004


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A deliberately invalid row: where it is and what is wrong with it."""

    file: str
    line: int
    kind: str
    field: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {
            "file": self.file,
            "line": self.line,
            "kind": self.kind,
            "field": self.field,
            "detail": self.detail,
        }


def dumps(obj: dict[str, Any]) -> str:
    """Serialise one record the way every JSON lines file is written."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class _Injector:
    """Decide which rows to spoil, guaranteeing each kind appears early in any run.

    Each kind fires on a seeded early eligible row (so even a 50-person sample has one of
    each), then at a low random rate. It uses its own random stream, so spoiling never shifts
    the content generated for people.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._countdown = {
            BROKEN_JSON: rng.randint(1, 12),
            BAD_DATE: rng.randint(1, 12),
            UNKNOWN_CODE: rng.randint(1, 12),
            BAD_NHS_NUMBER: rng.randint(1, 8),
            BAD_HL7: rng.randint(1, 3),
        }

    def pick(self, eligible: list[str], rate: float) -> str | None:
        """Return the kind to apply to this row, or None to leave it intact."""
        due = None
        for kind in eligible:
            left = self._countdown[kind]
            if left > 0:
                self._countdown[kind] = left - 1
                if left == 1:
                    if due is None:
                        due = kind
                    else:
                        # Two kinds due on one row: the second waits for the next row.
                        self._countdown[kind] = 1
        if due is not None:
            return due
        if self.rng.random() < rate:
            return eligible[self.rng.randrange(len(eligible))]
        return None


class Sink:
    """All output files of one run; people generators write records here."""

    def __init__(self, out_dir: Path, rng: random.Random) -> None:
        self.out_dir = out_dir
        self.invalid: list[InvalidRow] = []
        self._inj = _Injector(rng)
        self._files: dict[str, TextIO] = {}
        self.counts: dict[str, int] = {}
        for rel in JSONL_FILES:
            path = out_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            self._files[rel] = path.open("w", encoding="utf-8", newline="\n")
            self.counts[rel] = 0
        self.hl7 = Hl7Spool(out_dir)

    def write(self, rel: str, obj: dict[str, Any]) -> None:
        """Write one record, possibly spoiled on purpose (and then listed as invalid)."""
        line = self.counts[rel] + 1
        self.counts[rel] = line
        text = self._spoil(rel, line, obj) if rel != "truth.jsonl" else None
        self._files[rel].write((text if text is not None else dumps(obj)) + "\n")

    def _spoil(self, rel: str, line: int, obj: dict[str, Any]) -> str | None:
        """Return the spoiled text of a row chosen for injection, else None."""
        dates, code_field, can_break = JSONL_FILES[rel]
        rng = self._inj.rng
        if rel == ASC_PERSONS:
            nhs = obj.get("nhs_number")
            if not nhs or self._inj.pick([BAD_NHS_NUMBER], _NHS_RATE) is None:
                return None
            bad = _corrupt_nhs_number(rng, normalise(nhs))
            obj = {**obj, "nhs_number": bad}
            self._add(
                rel,
                line,
                BAD_NHS_NUMBER,
                "nhs_number",
                f"NHS number {bad} fails the "
                "modulus 11 check (a transcription error of the person's real number)",
            )
            return dumps(obj)
        present_dates = [f for f in dates if obj.get(f)]
        eligible = []
        if can_break:
            eligible.append(BROKEN_JSON)
        if present_dates:
            eligible.append(BAD_DATE)
        if code_field:
            eligible.append(UNKNOWN_CODE)
        kind = self._inj.pick(eligible, _JSON_RATE) if eligible else None
        if kind is None:
            return None
        if kind == BROKEN_JSON:
            text = dumps(obj)
            cut = rng.randrange(len(text) // 3, len(text) - 1)
            self._add(rel, line, kind, None, f"line cut off after {cut} of {len(text)} characters")
            return text[:cut]
        if kind == BAD_DATE:
            field = present_dates[rng.randrange(len(present_dates))]
            bad = f"{rng.choice((30, 31))}/02/{str(obj[field])[:4]}"
            self._add(
                rel,
                line,
                kind,
                field,
                f"{field} is {bad!r}: day-first text, not an ISO 8601 date, and not a real date",
            )
            return dumps({**obj, field: bad})
        assert code_field is not None
        bad = f"ZZ{rng.randrange(10, 100)}"
        self._add(
            rel, line, kind, code_field, f"{code_field} {bad!r} is not in the local code list"
        )
        return dumps({**obj, code_field: bad})

    def _add(self, rel: str, line: int, kind: str, field: str | None, detail: str) -> None:
        self.invalid.append(InvalidRow(rel, line, kind, field, detail))

    def adt(self, sort_key: int, text: str, *, may_spoil: bool) -> None:
        """Queue one ADT message; update messages may be spoiled on purpose."""
        spoil = None
        if may_spoil and self._inj.pick([BAD_HL7], _HL7_RATE) is not None:
            text, spoil = _corrupt_hl7(self._inj.rng, text)
        self.hl7.add(sort_key, text, spoil)

    def close(self) -> None:
        """Finish the HL7 batches and close every file."""
        for fh in self._files.values():
            fh.close()
        hl7_counts, hl7_invalid = self.hl7.finish()
        self.counts.update(hl7_counts)
        self.invalid.extend(hl7_invalid)
        self.invalid.sort(key=lambda r: (r.file, r.line))


def _corrupt_nhs_number(rng: random.Random, nhs: str) -> str:
    """Swap two adjacent differing digits after the 999 prefix (mod 11 always catches it)."""
    positions = [i for i in range(3, 8) if nhs[i] != nhs[i + 1]]
    if positions:
        i = rng.choice(positions)
        bad = nhs[:i] + nhs[i + 1] + nhs[i] + nhs[i + 2 :]
    else:
        bad = nhs[:9] + str((int(nhs[9]) + 1) % 10)
    assert not is_valid(bad)
    return bad


def _corrupt_hl7(rng: random.Random, text: str) -> tuple[str, tuple[str, str, str]]:
    """Break a message so no HL7 parser accepts it; return it and (kind, field, detail)."""
    segments = text.split("\r")
    if rng.random() < 0.5:
        return "\r".join(segments[1:]), (BAD_HL7, "MSH", "message has no MSH segment")
    i = next(n for n, s in enumerate(segments) if s.startswith("PID|"))
    segments[i] = "P1D" + segments[i][3:]
    return "\r".join(segments), (BAD_HL7, "PID", "PID segment id is misspelt 'P1D'")


class Hl7Spool:
    """Collect ADT messages in any order and write them chronologically in numbered batches.

    Messages are sorted in memory in runs of HL7_RUN_SIZE, spilled to temporary files and
    merged (an external merge sort), so memory stays bounded however many people there are.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._tmp = out_dir / ".synth-tmp"
        self._buffer: list[str] = []
        self._runs: list[Path] = []
        self._seq = 0

    def add(self, sort_key: int, text: str, spoil: tuple[str, str, str] | None) -> None:
        """Queue a message under its UTC-minute sort key (ties keep arrival order)."""
        self._seq += 1
        kind, field, detail = spoil or ("", "", "")
        self._buffer.append(f"{sort_key:010d}{self._seq:010d}\t{kind}\t{field}\t{detail}\t{text}")
        if len(self._buffer) >= HL7_RUN_SIZE:
            self._spill()

    def _spill(self) -> None:
        self._tmp.mkdir(exist_ok=True)
        path = self._tmp / f"run-{len(self._runs):04d}.txt"
        self._buffer.sort()
        with path.open("w", encoding="utf-8", newline="\n") as fh:
            for line in self._buffer:
                fh.write(line + "\n")
        self._runs.append(path)
        self._buffer = []

    def _sorted(self) -> Iterator[str]:
        if not self._runs:
            self._buffer.sort()
            yield from self._buffer
            return
        if self._buffer:
            self._spill()
        # newline="\n": messages contain "\r", which must not split lines on reading.
        handles = [p.open("r", encoding="utf-8", newline="\n") for p in self._runs]
        try:
            for line in heapq.merge(*handles):
                yield line[:-1]
        finally:
            for fh in handles:
                fh.close()

    def finish(self) -> tuple[dict[str, int], list[InvalidRow]]:
        """Write the batch files; return messages per file and the spoiled messages."""
        counts: dict[str, int] = {}
        invalid: list[InvalidRow] = []
        (self.out_dir / HL7_DIR).mkdir(parents=True, exist_ok=True)
        fh: TextIO | None = None
        rel = ""
        n = 0
        try:
            for entry in self._sorted():
                _, kind, field, detail, text = entry.split("\t", 4)
                if n % HL7_MESSAGES_PER_FILE == 0:
                    if fh:
                        fh.close()
                    rel = f"{HL7_DIR}/adt-{n // HL7_MESSAGES_PER_FILE + 1:04d}.hl7"
                    fh = (self.out_dir / rel).open("w", encoding="utf-8", newline="\n")
                    counts[rel] = 0
                n += 1
                counts[rel] += 1
                # Control ids follow the order messages are sent in, as a real feed's do.
                assert fh is not None
                fh.write(text.replace(CONTROL_ID_PLACEHOLDER, f"{n:010d}", 1) + "\n")
                if kind:
                    invalid.append(InvalidRow(rel, counts[rel], kind, field, detail))
        finally:
            if fh:
                fh.close()
            shutil.rmtree(self._tmp, ignore_errors=True)
        return counts, invalid
