"""Build HL7 v2 acknowledgements (ACK) in original and enhanced mode.

Original mode (MSH-15 and MSH-16 both empty) answers every message with one application
acknowledgement: AA accepted, AE error in processing, AR rejected. Enhanced mode (either
field set) separates the commit acknowledgement — CA committed to safe storage, CE could not
commit, CR rejected — sent on the same connection when MSH-15 asks for it, from an
application acknowledgement sent later, when MSH-16 asks for it. MSH-15/16 values: AL
always, NE never, ER only on error or reject, SU only on success.

These functions only build bytes; deciding when a message counts as committed is the
ingest service's job.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum
from typing import Final

from adapters.base import AdapterError
from adapters.chs.hl7 import (
    APPLICATION_INTERNAL_ERROR,
    CONDITION_TEXT,
    DEFAULT_SEPARATORS,
    Hl7Error,
    MessageHeader,
    ParsedMessage,
    Separators,
    escape,
    salvage_header,
)

ORIGINAL_CODES: Final = frozenset({"AA", "AE", "AR"})
ENHANCED_CODES: Final = frozenset({"CA", "CE", "CR"})
ACK_CODES: Final = ORIGINAL_CODES | ENHANCED_CODES
ACK_MODES: Final = frozenset({"AL", "NE", "ER", "SU"})
DEFAULT_VERSION: Final = "2.4"
# MSA-3 is an 80-character ST before v2.5; the full text goes in ERR.
_MSA_TEXT_MAX: Final = 80
_LOCATION = re.compile(r"([A-Z][A-Z0-9]{2})(?:-(\d+)(?:\.(\d+)(?:\.(\d+))?)?)?\Z")


class Outcome(Enum):
    """What happened to a message, from which the ACK code follows by mode."""

    ACCEPTED = "accepted"  # stored (AA / CA)
    ERROR = "error"  # its content could not be processed; resending it unchanged won't help
    REJECTED = "rejected"  # its header is unacceptable (type, event, version, control id)
    FAILED = "failed"  # the receiver failed (crash, timeout, storage down); may be resent


_CODES: Final = {
    # outcome: (original mode, enhanced mode commit ACK)
    Outcome.ACCEPTED: ("AA", "CA"),
    Outcome.ERROR: ("AE", "CE"),
    Outcome.REJECTED: ("AR", "CR"),
    # Original mode's AR covers "rejected for a reason unrelated to content, e.g. the
    # receiver is down"; in enhanced mode that is a commit error.
    Outcome.FAILED: ("AR", "CE"),
}


def _header(original: ParsedMessage | MessageHeader | bytes) -> MessageHeader:
    """Return the header of whatever the caller has of the original message."""
    if isinstance(original, ParsedMessage):
        return original.header
    if isinstance(original, MessageHeader):
        return original
    return salvage_header(bytes(original))


def is_enhanced_mode(original: ParsedMessage | MessageHeader | bytes) -> bool:
    """Return True when MSH-15 or MSH-16 is set (enhanced acknowledgement mode)."""
    h = _header(original)
    return bool(h.accept_ack_type or h.application_ack_type)


def _wanted(mode: str, success: bool) -> bool:
    """Return whether an MSH-15/16 value asks for an acknowledgement of this outcome."""
    mode = mode.upper()
    if mode == "NE":
        return False
    if mode == "ER":
        return not success
    if mode == "SU":
        return success
    # AL, or a value outside table 0155: answering is the safe reading.
    return True


def wants_commit_ack(original: ParsedMessage | MessageHeader | bytes, outcome: Outcome) -> bool:
    """Return whether the sender wants an ACK on the connection for this outcome.

    Always true in original mode; in enhanced mode per MSH-15 (empty counts as AL).
    """
    h = _header(original)
    if not is_enhanced_mode(h):
        return True
    return _wanted(h.accept_ack_type or "AL", outcome is Outcome.ACCEPTED)


def wants_application_ack(
    original: ParsedMessage | MessageHeader | bytes, outcome: Outcome
) -> bool:
    """Return whether, in enhanced mode, MSH-16 asks for a later application ACK.

    Empty MSH-16 in enhanced mode means none (HL7 treats it as NE).
    """
    h = _header(original)
    if not is_enhanced_mode(h) or not h.application_ack_type:
        return False
    return _wanted(h.application_ack_type, outcome is Outcome.ACCEPTED)


def ack_code(
    original: ParsedMessage | MessageHeader | bytes,
    outcome: Outcome,
    *,
    application: bool = False,
) -> str:
    """Return the MSA-1 code for an outcome: AA/AE/AR, or CA/CE/CR in enhanced mode.

    ``application=True`` gives the code of an enhanced-mode application ACK (AA/AE/AR).
    """
    original_code, commit_code = _CODES[outcome]
    if application or not is_enhanced_mode(original):
        return original_code
    return commit_code


def outcome_of(error: AdapterError) -> Outcome:
    """Return the outcome a parse error stands for (header faults reject the message)."""
    return Outcome.REJECTED if getattr(error, "reject", False) else Outcome.ERROR


def _timestamp(at: datetime | str | None) -> str:
    """Return an HL7 date-time (``YYYYMMDDHHMMSS+ZZZZ``) for MSH-7."""
    if at is None:
        at = datetime.now().astimezone()
    if isinstance(at, str):
        return at
    text = at.strftime("%Y%m%d%H%M%S")
    return text + at.strftime("%z") if at.utcoffset() is not None else text


def _version_tuple(version: str) -> tuple[int, ...]:
    """Return ``"2.5.1"`` as ``(2, 5, 1)``; unknown text sorts as the default version."""
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (2, 4)


def _error_segment(
    version: str,
    seps: Separators,
    location: str | None,
    condition: int,
    text: str,
) -> str:
    """Return the ERR segment: ERR-1 (ELD) before v2.5, ERR-2/3/4/8 from v2.5."""
    fs, cs, ss = seps.field, seps.component, seps.subcomponent or seps.component
    segment = position = component = ""
    match = _LOCATION.match(location or "")
    if match:
        segment, position, component = match.group(1), match.group(2) or "", match.group(3) or ""
    condition_text = CONDITION_TEXT.get(condition, "")
    if _version_tuple(version) < (2, 5):
        # ELD-4 is a CE inside a component, so its parts are subcomponents.
        code = ss.join([str(condition), escape(condition_text, seps), "HL70357"])
        eld = _join(cs, [segment, "1" if segment else "", position, code])
        return _join(fs, ["ERR", eld])
    erl = _join(cs, [segment, "1", position, "1" if position else "", component])
    code = _join(cs, [str(condition), escape(condition_text, seps), "HL70357"])
    return _join(fs, ["ERR", "", erl if segment else "", code, "E", "", "", "", escape(text, seps)])


def _join(separator: str, parts: list[str]) -> str:
    """Join parts, dropping trailing empty ones (HL7 leaves trailing delimiters out)."""
    while parts and not parts[-1]:
        parts = parts[:-1]
    return separator.join(parts)


def build_ack(
    original: ParsedMessage | MessageHeader | bytes,
    code: str,
    *,
    control_id: str,
    text: str | None = None,
    error_location: str | None = None,
    condition: int | None = None,
    timestamp: datetime | str | None = None,
) -> bytes:
    """Return an ACK for ``original`` (parsed, its header, or raw bytes however broken).

    MSH swaps the original's sending and receiving application/facility, echoes its
    processing id, version and character set, and carries ``control_id`` (the caller
    issues it, so tests are deterministic) and ``timestamp`` (default now). MSA-2 is the
    original control id, MSA-3 the ``text`` (cut to 80 characters). An ERR segment is
    added for every code but AA/CA, or when ``error_location`` (``PID-3``) is given, with
    ``condition`` from HL7 table 0357 (default 207, application internal error).
    """
    if code not in ACK_CODES:
        raise ValueError(f"ACK code {code!r} is not one of {', '.join(sorted(ACK_CODES))}")
    h = _header(original)
    seps = h.separators if h.msh else DEFAULT_SEPARATORS
    fs, cs = seps.field, seps.component
    version = h.version or DEFAULT_VERSION
    if _version_tuple(version) < (2, 3, 1):
        message_type = cs.join(["ACK", h.event]) if h.event else "ACK"
    else:
        message_type = cs.join(["ACK", h.event, "ACK"]) if h.event else "ACK"
    msh = [
        "MSH",
        seps.encoding_characters,
        h.raw_field(5),
        h.raw_field(6),
        h.raw_field(3),
        h.raw_field(4),
        _timestamp(timestamp),
        "",
        message_type,
        escape(control_id, seps),
        h.raw_field(11).split(cs)[0] or "P",
        version,
    ]
    charset = h.raw_field(18)
    if charset:
        msh += ["", "", "", "", "", charset]
    reason = text or ""
    if len(reason) > _MSA_TEXT_MAX:
        short = reason[: _MSA_TEXT_MAX - 3] + "..."
    else:
        short = reason
    msa = ["MSA", code, escape(h.control_id, seps), escape(short, seps)]
    segments = [_join(fs, msh), _join(fs, msa)]
    if code not in ("AA", "CA") or error_location:
        segments.append(
            _error_segment(
                version,
                seps,
                error_location,
                condition or APPLICATION_INTERNAL_ERROR,
                reason,
            )
        )
    return ("\r".join(segments) + "\r").encode(_codec(h.charset), errors="replace")


def build_error_ack(
    original: ParsedMessage | MessageHeader | bytes,
    error: AdapterError,
    *,
    control_id: str,
    timestamp: datetime | str | None = None,
) -> bytes:
    """Return the AE/AR (CE/CR) ACK for a message the parser refused, naming where and why."""
    outcome = outcome_of(error)
    return build_ack(
        original,
        ack_code(original, outcome),
        control_id=control_id,
        text=str(error),
        error_location=error.field,
        condition=error.condition if isinstance(error, Hl7Error) else None,
        timestamp=timestamp,
    )


def _codec(charset: str) -> str:
    """Return the codec an ACK is written in: the original's, else UTF-8."""
    charset = charset.strip().upper()
    if charset in ("ASCII", "ISO IR6"):
        return "ascii"
    if charset in ("8859/1", "ISO IR100"):
        return "latin-1"
    return "utf-8"
