"""Micro-benchmark: the fast HL7 parser against hl7apy, and the MLLP decoder, in one run.

Usage: python bench/bench_hl7_parse.py [--quick] [--json] [--file ADT.hl7]

Parses the valid messages of the committed sample (or ``--file``) repeatedly and prints
messages per second for: the fast parser (bytes → fields → SourceRecord), the same with
hl7apy's structure check (``strict=True``), hl7apy's own parse of the same text, the batch
file reader, and the MLLP decoder alone; then the fast/hl7apy ratio. Each figure is the
best of several rounds, on one core. ``--json`` prints one JSON object of the figures as
the last line of standard output.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.chs.batch import read_batch  # noqa: E402
from adapters.chs.hl7 import hl7_datetime_to_iso, parse_message  # noqa: E402
from adapters.chs.mllp import Frame, MllpDecoder, frame  # noqa: E402

SAMPLE = ROOT / "examples" / "sample" / "chs" / "adt" / "adt-0001.hl7"


def rate(work: Callable[[], int], seconds: float, rounds: int) -> float:
    """Return the best messages-per-second over ``rounds`` rounds of about ``seconds``."""
    work()  # warm up: first calls load hl7apy's tables and fill caches
    best = 0.0
    for _ in range(rounds):
        done, start = 0, time.perf_counter()
        while True:
            done += work()
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        best = max(best, done / elapsed)
    return best


def main() -> None:
    """Run the benchmark and print the table (and JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and fast (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print figures as JSON last")
    parser.add_argument("--file", type=Path, default=SAMPLE, help="an HL7 batch file")
    args = parser.parse_args()
    seconds, rounds = (0.05, 1) if args.quick else (1.0, 5)

    data = args.file.read_bytes()
    messages = [m for m in data.split(b"\n") if m.startswith(b"MSH")]
    texts = [m.decode() for m in messages]
    batch_file = b"\n".join(messages) + b"\n"
    stream = b"".join(frame(m) for m in messages)
    avg_bytes = sum(map(len, messages)) / len(messages)

    # Timestamps repeat across rounds but rarely across real traffic: start each pass with an
    # empty date cache so it only helps where it would (EVN-2 equal to MSH-7).
    def fast() -> int:
        hl7_datetime_to_iso.cache_clear()
        for m in messages:
            parse_message(m).to_record()
        return len(messages)

    def strict() -> int:
        for m in messages[:10]:
            parse_message(m, strict=True)
        return 10

    def hl7apy() -> int:
        from hl7apy.parser import parse_message as hl7apy_parse

        for t in texts[:10]:
            hl7apy_parse(t, find_groups=True)
        return 10

    def batch() -> int:
        hl7_datetime_to_iso.cache_clear()
        return sum(1 for _ in read_batch(io.BytesIO(batch_file)))

    def mllp() -> int:
        decoder = MllpDecoder()
        n = 0
        for i in range(0, len(stream), 65536):
            n += sum(isinstance(e, Frame) for e in decoder.feed(stream[i : i + 65536]))
        return n

    # The fast path first: an ingest process that is not strict never imports hl7apy, whose
    # tables (~50,000 objects) slow the garbage collector for everything after them.
    rates = {
        "fast_parse_msgs_per_s": rate(fast, seconds, rounds),
        "batch_read_msgs_per_s": rate(batch, seconds, rounds),
        "mllp_decode_msgs_per_s": rate(mllp, seconds, rounds),
        "strict_parse_msgs_per_s": rate(strict, seconds, max(1, rounds // 2)),
        "hl7apy_parse_msgs_per_s": rate(hl7apy, seconds, max(1, rounds // 2)),
    }
    ratio = rates["fast_parse_msgs_per_s"] / rates["hl7apy_parse_msgs_per_s"]

    print(f"HL7 parse benchmark: {len(messages)} ADT messages, {avg_bytes:.0f} bytes on average")
    print(f"{'what':<44}{'messages/s':>14}")
    labels = {
        "fast_parse_msgs_per_s": "fast parser (bytes -> SourceRecord)",
        "strict_parse_msgs_per_s": "fast parser + hl7apy structure check",
        "hl7apy_parse_msgs_per_s": "hl7apy parse_message (find_groups)",
        "batch_read_msgs_per_s": "read_batch (split + parse)",
        "mllp_decode_msgs_per_s": "MLLP decoder alone",
    }
    for key, label in labels.items():
        print(f"{label:<44}{rates[key]:>14,.0f}")
    print(f"{'fast parser / hl7apy':<44}{ratio:>13,.0f}x")
    if args.json:
        figures = {
            "messages": len(messages),
            "avg_message_bytes": round(avg_bytes),
            **{k: round(v, 1) for k, v in rates.items()},
            "fast_vs_hl7apy_ratio": round(ratio, 1),
            "python": platform.python_version(),
            "quick": args.quick,
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
