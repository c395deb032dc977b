"""Adult social care (ASC) case system adapter: export files (JSON lines, CSV) and HTTP pull.

Fetch and parse only: no database, no FHIR, no business rules (docs/adapters-asc.md).
"""

from adapters.asc.csvio import parse_csv, read_csv, write_csv
from adapters.asc.files import AscAdapter, ExportFile
from adapters.asc.http_pull import AscFetchError, AscHttpSource, map_exceptions
from adapters.asc.jsonl import parse_jsonl, read_jsonl
from adapters.asc.kinds import KINDS, SYSTEM, Kind, get_kind, kind_for_path, known_file_names

__all__ = [
    "KINDS",
    "SYSTEM",
    "AscAdapter",
    "AscFetchError",
    "AscHttpSource",
    "ExportFile",
    "Kind",
    "get_kind",
    "kind_for_path",
    "known_file_names",
    "map_exceptions",
    "parse_csv",
    "parse_jsonl",
    "read_csv",
    "read_jsonl",
    "write_csv",
]
