"""Read a set of ASC export files (JSON lines or CSV) in load order, persons first."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from adapters.asc.csvio import read_csv
from adapters.asc.jsonl import read_jsonl
from adapters.asc.kinds import KINDS, SYSTEM, Format, Kind, kind_for_path
from adapters.base import AdapterError, SourceRecord

_KIND_ORDER = {name: position for position, name in enumerate(KINDS)}
_FORMAT_ORDER: dict[Format, int] = {"jsonl": 0, "csv": 1}


@dataclass(frozen=True)
class ExportFile:
    """One export file to read: its path, record kind and format."""

    path: Path
    kind: Kind
    format: Format


class AscAdapter:
    """Read ASC export files, given as files or directories, as a SourceAdapter.

    Files are read one kind at a time in :data:`KINDS` order, persons first: every other kind
    refers to a person, so on a first load the person already exists when its contacts,
    assessments and services arrive and their references resolve without a second pass.
    Within a kind, JSON lines files come before CSV files, then by name.

    A file given by name must be a known export file name (else AdapterError listing them);
    a directory contributes its known export files and lists the rest in ``skipped``.
    Construction checks the names only; files are opened and streamed by ``read()``.
    """

    system = SYSTEM

    def __init__(self, sources: str | Path | Iterable[str | Path]) -> None:
        paths = [sources] if isinstance(sources, str | Path) else list(sources)
        found: list[ExportFile] = []
        skipped: list[Path] = []
        for source in map(Path, paths):
            if source.is_dir():
                for path in sorted(source.iterdir()):
                    if path.name.startswith(".") or not path.is_file():
                        continue
                    try:
                        found.append(ExportFile(path, *kind_for_path(path)))
                    except AdapterError:
                        skipped.append(path)
            elif source.is_file():
                found.append(ExportFile(source, *kind_for_path(source)))
            else:
                raise AdapterError(
                    f"{source}: no such file or directory", field="file", origin=source.name
                )
        # The same file named twice (say, directly and through its directory) is read once.
        unique = {f.path.resolve(): f for f in found}
        found = list(unique.values())
        found.sort(key=lambda f: (_KIND_ORDER[f.kind.name], _FORMAT_ORDER[f.format], f.path.name))
        self.files: tuple[ExportFile, ...] = tuple(found)
        self.skipped: tuple[Path, ...] = tuple(skipped)

    def read(self) -> Iterator[SourceRecord | AdapterError]:
        """Yield every record (or AdapterError for a bad row) of every file, in load order."""
        for export in self.files:
            reader = read_jsonl if export.format == "jsonl" else read_csv
            yield from reader(export.path, kind=export.kind.name)
