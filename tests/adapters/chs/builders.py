"""Builders and paths shared by the community health adapter tests."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "examples" / "sample"
ADT_FILE = SAMPLE / "chs" / "adt" / "adt-0001.hl7"
EXTRACTS_DIR = SAMPLE / "chs" / "extracts"

MSH_24 = (
    "MSH|^~\\&|CHS|RXX|CAREBRIDGE|CAREBRIDGE|20250102030405+0000||ADT^A01^ADT_A01|CTRL1|P|2.4"
    "|||AL|NE|GBR|UNICODE UTF-8"
)
EVN = "EVN|A01|20250102030000+0000"
PID = "PID|1||9434765919^^^NHS^NH~CHS0000001^^^RXX^MR||Smith^Anne^^^Mrs||19400101|F"
# PV1-44 (admit date-time) is the 44th field.
PV1 = "PV1|1|I|ROWAN^BAY1^BED01^RXX|E" + "|" * 40 + "20250102030000+0000"


def message(*segments: str, sep: str = "\r") -> bytes:
    """Return a message from segment strings joined by ``sep`` (UTF-8)."""
    return sep.join(segments).encode()


def a01(*extra: str, msh: str = MSH_24, sep: str = "\r") -> bytes:
    """Return a valid A01 with optional extra segments after PV1."""
    return message(msh, EVN, PID, PV1, *extra, sep=sep)
