"""The community health record's files as one :class:`~adapters.base.SourceAdapter`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from adapters.base import AdapterError, SourceRecord
from adapters.chs.batch import read_batch
from adapters.chs.extract import EXTRACTS, read_extract
from adapters.chs.hl7 import DEFAULT_MAX_MESSAGE_BYTES, SYSTEM

HL7_SUFFIXES: Final = (".hl7",)
EXTRACT_SUFFIX: Final = ".jsonl"
_EXTRACT_ORDER: Final = {f"{stem}{EXTRACT_SUFFIX}": i for i, stem in enumerate(EXTRACTS)}


class ChsAdapter:
    """Read ADT batch files and JSON-lines extracts from files or directories.

    A directory is searched recursively: its HL7 batch files (``*.hl7``) come first, in
    path order (the generator numbers them chronologically), so patients exist before the
    extracts that refer to them; then its extracts in the order of ``EXTRACTS``. A
    ``.jsonl`` file with an unknown name is read as an error (so a misnamed extract is
    noticed); other files are listed in ``skipped``. Files named explicitly are read in
    the order given; one that is missing or of an unknown type yields an error and the
    rest are still read. A file named twice is read once.
    """

    system = SYSTEM

    def __init__(
        self,
        paths: str | Path | Iterable[str | Path],
        *,
        strict: bool = False,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        if isinstance(paths, str | Path):
            paths = [paths]
        self.strict = strict
        self.max_message_bytes = max_message_bytes
        files: list[Path] = []
        skipped: list[Path] = []
        for path in map(Path, paths):
            if path.is_dir():
                found, rest = _directory_files(path)
                files += found
                skipped += rest
            else:
                files.append(path)
        unique: dict[Path, Path] = {}
        for path in files:
            unique.setdefault(path.resolve(), path)
        self.files: tuple[Path, ...] = tuple(unique.values())
        self.skipped: tuple[Path, ...] = tuple(skipped)

    def read(self) -> Iterator[SourceRecord | AdapterError]:
        """Yield every record of every file, and an error in place of each bad one."""
        for path in self.files:
            yield from self._read_file(path)

    def _read_file(self, path: Path) -> Iterator[SourceRecord | AdapterError]:
        """Yield one file's records, or a single error when the file cannot be read."""
        if not path.is_file():
            yield AdapterError(
                f"{path} does not exist or is not a file", field="file", origin=path.name
            )
            return
        try:
            if path.suffix.lower() in HL7_SUFFIXES:
                yield from read_batch(
                    path, strict=self.strict, max_message_bytes=self.max_message_bytes
                )
            elif path.suffix.lower() == EXTRACT_SUFFIX:
                yield from read_extract(path)
            else:
                yield AdapterError(
                    f"{path.name!r} is neither an HL7 batch file ({', '.join(HL7_SUFFIXES)}) "
                    f"nor a JSON-lines extract ({EXTRACT_SUFFIX})",
                    field="file",
                    origin=path.name,
                )
        except AdapterError as exc:
            exc.field = exc.field or "file"
            yield exc
        except OSError as exc:
            yield AdapterError(
                f"{path} could not be read: {exc.strerror or exc}", field="file", origin=path.name
            )


def _directory_files(root: Path) -> tuple[list[Path], list[Path]]:
    """Return a directory's files in reading order (batches, then extracts) and the rest."""
    everything = sorted(p for p in root.rglob("*") if p.is_file())
    batches = [p for p in everything if p.suffix.lower() in HL7_SUFFIXES]
    extracts = [p for p in everything if p.suffix.lower() == EXTRACT_SUFFIX]
    extracts.sort(key=lambda p: (_EXTRACT_ORDER.get(p.name, len(_EXTRACT_ORDER)), str(p)))
    read = set(batches) | set(extracts)
    return batches + extracts, [p for p in everything if p not in read]
