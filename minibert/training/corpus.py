"""Corpus readers: a corpus → units of work → documents, each a list of text segments (sentences) in reading order.

A document's segments are the sentences of its non-empty lines, the segments from which NSP pairs are built
(Devlin et al., 2019, §3.1 Task #2 and Appendix A.2). A corpus is one or more paths; folders are walked in
sorted order, hidden names skipped. Each file or dataset is read by kind:

- text (any other suffix, or `.gz` for gzip): documents are separated by blank lines, and a file always
  starts a new document. Lines are read as bytes and decoded as UTF-8 one at a time; a line that is not
  UTF-8 is skipped and counted (or, strictly, an error).
- jsonl (`.jsonl`, `.json`, optionally `.gz`): one JSON object per line, one document per object: the lines
  of its text field (default "text"; blank lines inside it do not split it).
- parquet (`.parquet`): one document per row of the text column.
- arrow (a folder written by `datasets`' `save_to_disk`, or the "train" split of a saved `DatasetDict`):
  one document per row of the text column.
- hub (a path given as `hub:PATH`): `datasets.load_dataset` on a local folder or file, split "train",
  streamed; one document per row, except for the "text" builder (one row per line), whose blank lines
  separate documents as in a text file.

A record (JSONL object or row) whose text field is missing, null or blank is skipped and counted (or,
strictly, an error); a text that is not a string is always an error.

Work is split into units (`plan_units`), read independently (`read_unit`), for instance in parallel worker
processes. A plain text or JSONL file is cut into byte ranges of about `unit_bytes`, which the reader moves
to safe boundaries: a JSONL unit owns the lines that begin in its range; a text unit's nominal offset x
becomes B(x), just after the first blank line that begins at or after x (the file's start and end map to
themselves). Neighbouring units compute the same boundary, so every document is read exactly once, whole,
and the documents of a file do not depend on the unit size. A gzip file is one unit; a parquet file has one
unit per row group, a saved dataset one per range of rows, a hub dataset one per shard.

The embedded default corpus, used when no corpus is given, is the English prose of the Python standard
library's docstrings, read from the `.py` sources of the running interpreter with `ast` (nothing is
imported or executed): about 1 MB of technical English that every Python install carries, offline.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import gzip
import hashlib
import json
import os
import re
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[])")
STDLIB_SKIP = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo", "ensurepip",
               "__pycache__", "tkinter"}
STDLIB_BYTES = 1 << 20        # about the size of the docstring corpus, for progress bars
JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
ARROW_ROWS = 1000             # rows read from a saved dataset at a time
_MISSING = object()           # a record without the text field


class CorpusError(ValueError):
    """Bad corpus input: the message names the file (and line, record or field)."""


@dataclasses.dataclass(frozen=True)
class Unit:
    """A piece of a corpus read as a whole: one shard of prepared data.

    kind: "text", "jsonl", "parquet", "arrow", "hub" or "stdlib" (see the module docstring).
    path: the file or folder ("" for stdlib).
    start, stop: text/jsonl: nominal byte offsets (0 and the file size for a gzip file); parquet: row groups;
        arrow: rows; hub: the shard's index and the number of shards; stdlib: 0, 0.
    nbytes: approximate bytes of text, for progress bars.
    """

    kind: str
    path: str
    start: int
    stop: int
    nbytes: int


@dataclasses.dataclass
class ReadStats:
    """What reading saw, beyond the documents: counts for summaries, and the first record for error messages.

    first_record is "file:line (keys: ...)" for JSONL (or "file at byte N" in a unit that does not start
    the file: counting lines there would mean reading the file from its start), "file:row N (keys: ...)"
    for parquet and arrow, "path:shard I row N (keys: ...)" for hub.
    """

    documents: int = 0
    records: int = 0                   # JSONL / parquet / arrow / hub records seen
    records_skipped: int = 0           # records whose text field is missing, null or blank
    records_with_field: int = 0        # records that have the text field at all (even if null or blank)
    lines_undecodable: int = 0         # lines skipped because their bytes are not UTF-8
    first_record: str | None = None

    def __add__(self, other: ReadStats) -> ReadStats:
        return ReadStats(self.documents + other.documents, self.records + other.records,
                         self.records_skipped + other.records_skipped,
                         self.records_with_field + other.records_with_field,
                         self.lines_undecodable + other.lines_undecodable,
                         self.first_record if self.first_record is not None else other.first_record)


def split_sentences(line: str) -> list[str]:
    """A line of prose → its sentences, split after '.', '!' or '?' followed by a capital."""
    return [s for s in SENTENCE_END.split(line.strip()) if s]


def documents_from_text(text: str) -> list[list[str]]:
    """Blank-line-separated blocks → documents, each a list of sentences. CR line ends are fine."""
    return list(_documents(text.split("\n")))


def _sentences(text: str) -> list[str]:
    """The sentences of every line of `text` (CRs dropped)."""
    return [s for line in text.replace("\r", "").splitlines() for s in split_sentences(line)]


def _documents(lines: Iterable[str]) -> Iterator[list[str]]:
    """Lines → documents: a blank (whitespace-only) line ends a document; empty documents are dropped."""
    document = []
    for line in lines:
        if line.strip():
            document += _sentences(line)
        elif document:
            yield document
            document = []
    if document:
        yield document


@functools.cache
def python_docstrings() -> tuple[list[str], ...]:
    """The embedded default corpus: the prose of every docstring of the standard library's pure-Python modules,
    one document per paragraph. A paragraph's wrapped lines are joined before it is cut into sentences, doctest
    examples and indented code are dropped, and so is every sentence that is mostly not words (`is_prose`:
    signatures, tables, dates). The documents are in a fixed order shuffled by a hash of their text, so the last
    ones (held out for evaluation by `minibert pretrain`) are a sample of the whole library, not its last modules
    (xml, zipfile); a docstring repeated in several modules is kept once, so none is both trained on and held out.
    Read once per process (5 s, 1 MB): preparing reads it twice, for the vocabulary and the ids."""
    documents = {"\n".join(d): d for d in _docstring_documents()}          # one copy of each, first seen first
    return tuple(documents[text] for text in sorted(documents, key=lambda text: hashlib.md5(text.encode()).digest()))


def _docstring_documents() -> Iterator[list[str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    for file in sorted(root.rglob("*.py")):
        if set(file.relative_to(root).parts[:-1]) & STDLIB_SKIP:
            continue
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                docstring = ast.get_docstring(node)
                if not docstring or len(docstring) <= 80:
                    continue
                prose = [line for line in docstring.splitlines() if not line.startswith((" ", "\t", ">>>", "..."))]
                for paragraph in "\n".join(prose).split("\n\n"):
                    sentences = [s for s in split_sentences(" ".join(paragraph.split())) if is_prose(s)]
                    if sum(map(len, sentences)) > 40:
                        yield sentences


PLAIN_WORD = re.compile(r"""^[("']?[A-Za-z][a-z]*(?:'[a-z]+)?[)"']?[.,;:!?]?[)"']?$""")


def is_prose(sentence: str) -> bool:
    """At least two thirds of the words are plain words (letters, lower case after the first, with punctuation
    around them): "Return a new list." is prose, "splitattr('/path;attr1=value1') -> '/path'" is not."""
    words = sentence.split()
    return sum(bool(PLAIN_WORD.match(w)) for w in words) >= 2 / 3 * len(words)


# ---- planning ----

def plan_units(paths: list[str | Path] | None, *, text_field: str = "text", unit_bytes: int = 64 << 20) -> list[Unit]:
    """The units of a corpus, in reading order; None or [] is the embedded default corpus.

    Raises CorpusError for a path that does not exist, a corpus without files, a corpus with no text
    (all files empty), a parquet file or saved dataset without the text column, a saved DatasetDict
    without a "train" split, or a hub dataset that `datasets` cannot load.
    """
    if not paths:
        return [Unit("stdlib", "", 0, 0, STDLIB_BYTES)]
    entries = []
    for name in map(str, paths):
        path = Path(name.removeprefix("hub:"))
        if not path.exists():
            raise CorpusError(f"corpus path {path} does not exist")
        entries += [("hub", path)] if name.startswith("hub:") else _entries(path)
    if not entries:
        raise CorpusError(f"the corpus {', '.join(map(str, paths))} holds no files")
    units = []
    for kind, path in entries:
        if kind == "hub":
            units += _hub_units(path)
        elif kind == "arrow":
            units += _arrow_units(path, text_field, unit_bytes)
        elif kind == "parquet":
            units += _parquet_units(path, text_field)
        else:
            units += _byte_range_units(kind, path, unit_bytes)
    if not units:
        raise CorpusError(f"the corpus {', '.join(map(str, paths))} holds no text")
    return units


def source_files(units: Iterable[Unit]) -> list[Path]:
    """The distinct files behind the units, in order: every file under a dataset folder; none for stdlib."""
    files = []
    for kind, path in dict.fromkeys((unit.kind, unit.path) for unit in units):
        if kind in ("arrow", "hub") and Path(path).is_dir():
            files += _visible_files(Path(path))
        elif kind != "stdlib":
            files.append(Path(path))
    return list(dict.fromkeys(files))


def corpus_bytes(units: Iterable[Unit]) -> int:
    """The approximate bytes of text in the units."""
    return sum(unit.nbytes for unit in units)


def _entries(path: Path) -> list[tuple[str, Path]]:
    """(kind, path) of the files and saved datasets at or under `path`: sorted, hidden names skipped."""
    if path.is_dir() and _is_saved_dataset(path):
        return [("arrow", path)]
    if path.is_dir():
        return [entry for child in sorted(path.iterdir()) if not child.name.startswith(".")
                for entry in _entries(child)]
    return [(_file_kind(path), path)] if path.is_file() else []


def _is_saved_dataset(folder: Path) -> bool:
    return ((folder / "state.json").is_file() and (folder / "dataset_info.json").is_file()
            or (folder / "dataset_dict.json").is_file())


def _file_kind(path: Path) -> str:
    name = path.name.lower()
    return "jsonl" if name.endswith(JSONL_SUFFIXES) else "parquet" if name.endswith(".parquet") else "text"


def _visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _byte_range_units(kind: str, path: Path, unit_bytes: int) -> list[Unit]:
    """A plain text or JSONL file → byte ranges of about unit_bytes; a gzip file → one unit; empty → none."""
    size = path.stat().st_size
    if size == 0:
        return []
    if path.name.lower().endswith(".gz"):
        return [Unit(kind, str(path), 0, size, _gunzipped_size(path, size))]
    count = max(1, -(-size // unit_bytes))
    bounds = [size * i // count for i in range(count + 1)]
    return [Unit(kind, str(path), start, stop, stop - start) for start, stop in zip(bounds, bounds[1:])]


def _gunzipped_size(path: Path, size: int) -> int:
    """A gzip file's uncompressed size as its trailer gives it, modulo 2**32 (so, from 4 GiB of text on, an
    underestimate), and at least its compressed size."""
    with open(path, "rb") as f:
        f.seek(max(size - 4, 0))
        return max(int.from_bytes(f.read(4), "little"), size)


def _parquet_units(path: Path, field: str) -> list[Unit]:
    """One unit per non-empty row group, sized by the text column's uncompressed bytes."""
    metadata = _parquet_file(path, field).metadata
    units = []
    for group in range(metadata.num_row_groups):
        columns = metadata.row_group(group)
        if columns.num_rows:
            nbytes = sum(columns.column(j).total_uncompressed_size for j in range(columns.num_columns)
                         if columns.column(j).path_in_schema == field)
            units.append(Unit("parquet", str(path), group, group + 1, nbytes))
    return units


def _arrow_units(path: Path, field: str, unit_bytes: int) -> list[Unit]:
    """Row ranges of about unit_bytes of the text column."""
    dataset = _arrow_dataset(path, field)
    rows, nbytes = dataset.num_rows, dataset.data.column(field).nbytes
    step = max(1, unit_bytes * rows // max(nbytes, 1))
    units = []
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        units.append(Unit("arrow", str(path), start, stop, nbytes * (stop - start) // rows))
    return units


def _hub_units(path: Path) -> list[Unit]:
    """One unit per shard of the streamed dataset, each credited an equal part of its files' bytes."""
    shards = _hub_dataset(path).num_shards
    files = _visible_files(path) if path.is_dir() else [path]
    nbytes = sum(file.stat().st_size for file in files) // shards
    return [Unit("hub", str(path), shard, shards, nbytes) for shard in range(shards)]


def _parquet_file(path: str | Path, field: str):
    """The opened parquet file, checked to have the text column."""
    import pyarrow
    import pyarrow.parquet

    try:
        parquet = pyarrow.parquet.ParquetFile(path)
    except (pyarrow.ArrowException, OSError) as e:
        raise CorpusError(f"{path} is not a readable parquet file ({e})") from e
    _check_column(path, field, parquet.schema_arrow.names)
    return parquet


def _arrow_dataset(path: str | Path, field: str):
    """The dataset saved at `path` (the "train" split of a DatasetDict), checked to have the text column."""
    import datasets

    dataset = datasets.load_from_disk(str(path))
    if isinstance(dataset, datasets.DatasetDict):
        if "train" not in dataset:
            raise CorpusError(f"{path} is a DatasetDict without a 'train' split (its splits: {', '.join(dataset)})")
        dataset = dataset["train"]
    _check_column(path, field, dataset.column_names)
    return dataset


def _hub_dataset(path: str | Path):
    """datasets.load_dataset on a local folder (its builder inferred) or file (builder from its suffix), split
    "train", streamed."""
    import datasets

    try:
        if Path(path).is_dir():
            return datasets.load_dataset(str(path), split="train", streaming=True)
        builder = {"jsonl": "json", "parquet": "parquet", "text": "text"}[_file_kind(Path(path))]
        return datasets.load_dataset(builder, data_files=str(path), split="train", streaming=True)
    except (ValueError, FileNotFoundError) as e:
        raise CorpusError(f"hub:{path}: datasets cannot load it ({e})") from e


def _check_column(path: str | Path, field: str, columns: list[str]) -> None:
    if field not in columns:
        raise CorpusError(f"{path} has no column {field!r} (its columns: {', '.join(columns)})")


# ---- reading ----

def read_unit(unit: Unit, stats: ReadStats, *, text_field: str = "text", strict: bool = False) -> Iterator[list[str]]:
    """Yield the unit's documents, each a non-empty list of sentences, counting what is read in `stats`.

    Raises CorpusError (naming the file and line or row) for a JSONL line that is not a JSON object, a text
    field that is not a string, a missing parquet or dataset column, an unreadable gzip or parquet file; and
    with strict=True also for a line that is not UTF-8 and a record whose text field is missing, null or blank.
    """
    if unit.kind == "text":
        documents = _documents(line for _, line in _decoded_lines(unit, _after_blank_line, stats, strict))
    elif unit.kind == "jsonl":
        documents = _jsonl_documents(unit, stats, text_field, strict)
    elif unit.kind == "parquet":
        documents = _parquet_documents(unit, stats, text_field, strict)
    elif unit.kind == "arrow":
        documents = _arrow_documents(unit, stats, text_field, strict)
    elif unit.kind == "hub":
        documents = _hub_documents(unit, stats, text_field, strict)
    elif unit.kind == "stdlib":
        documents = iter(python_docstrings())
    else:
        raise CorpusError(f"unknown unit kind {unit.kind!r}")
    for document in documents:
        stats.documents += 1
        yield document


def _jsonl_documents(unit: Unit, stats: ReadStats, field: str, strict: bool) -> Iterator[list[str]]:
    """One document per JSON object line; whitespace-only lines are passed over."""
    for offset, line in _decoded_lines(unit, _line_start, stats, strict):
        if not line.strip():
            continue
        try:
            record = _json_object(line)
            if stats.first_record is None:
                place = f":{_line_number(unit.path, offset)}" if unit.start == 0 else f" at byte {offset}"
                stats.first_record = f"{unit.path}{place} (keys: {', '.join(record)})"
            document = _record_document(record.get(field, _MISSING), field, stats, strict)
        except CorpusError as e:
            raise CorpusError(f"{unit.path}:{_line_number(unit.path, offset)}: {e}") from e
        if document:
            yield document


def _json_object(line: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise CorpusError(f"not valid JSON ({e}; JSON Lines hold one object per line)") from e
    if not isinstance(record, dict):
        raise CorpusError(f"a JSON {type(record).__name__}, not an object")
    return record


def _parquet_documents(unit: Unit, stats: ReadStats, field: str, strict: bool) -> Iterator[list[str]]:
    parquet = _parquet_file(unit.path, field)
    row = sum(parquet.metadata.row_group(group).num_rows for group in range(unit.start))
    if stats.first_record is None:
        stats.first_record = f"{unit.path}:row {row} (keys: {', '.join(parquet.schema_arrow.names)})"
    for batch in parquet.iter_batches(row_groups=list(range(unit.start, unit.stop)), columns=[field]):
        yield from _column_documents(batch.column(0).to_pylist(), unit.path, row, field, stats, strict)
        row += batch.num_rows


def _arrow_documents(unit: Unit, stats: ReadStats, field: str, strict: bool) -> Iterator[list[str]]:
    dataset = _arrow_dataset(unit.path, field)
    if stats.first_record is None:
        stats.first_record = f"{unit.path}:row {unit.start} (keys: {', '.join(dataset.column_names)})"
    dataset = dataset.select_columns([field])
    for start in range(unit.start, unit.stop, ARROW_ROWS):
        values = dataset[start:min(start + ARROW_ROWS, unit.stop)][field]
        yield from _column_documents(values, unit.path, start, field, stats, strict)


def _column_documents(values: list, path: str, first_row: int, field: str, stats: ReadStats,
                      strict: bool) -> Iterator[list[str]]:
    """Rows of a text column (the first numbered first_row) → documents."""
    for row, value in enumerate(values, first_row):
        try:
            document = _record_document(value, field, stats, strict)
        except CorpusError as e:
            raise CorpusError(f"{path}:row {row}: {e}") from e
        if document:
            yield document


def _hub_documents(unit: Unit, stats: ReadStats, field: str, strict: bool) -> Iterator[list[str]]:
    """A shard's rows → documents; for the "text" builder, rows are lines, blank ones separating documents."""
    dataset = _hub_dataset(unit.path)
    shard = dataset.shard(num_shards=unit.stop, index=unit.start)
    if dataset.info.builder_name == "text":
        yield from _documents(row["text"] for row in shard)
        return
    for row, record in enumerate(shard):
        if stats.first_record is None:
            stats.first_record = f"{unit.path}:shard {unit.start} row {row} (keys: {', '.join(record)})"
        try:
            document = _record_document(record.get(field, _MISSING), field, stats, strict)
        except CorpusError as e:
            raise CorpusError(f"{unit.path}:shard {unit.start} row {row}: {e}") from e
        if document:
            yield document


def _record_document(value: object, field: str, stats: ReadStats, strict: bool) -> list[str] | None:
    """A record's text field value (_MISSING when it has none) → its document, or None for a skipped record.

    Raises CorpusError (naming the field only: the caller adds the place) for a value that is not a
    string, and with strict=True for a missing, null or blank one.
    """
    stats.records += 1
    if value is _MISSING:
        problem = "missing"
    else:
        stats.records_with_field += 1
        if isinstance(value, str) and value.strip():
            return _sentences(value)
        if value is not None and not isinstance(value, str):
            raise CorpusError(f"field {field!r} holds {type(value).__name__} {str(value)[:40]!r}, not a string")
        problem = "null" if value is None else "blank"
    if strict:
        raise CorpusError(f"field {field!r} is {problem}")
    stats.records_skipped += 1
    return None


# ---- lines of a byte range ----

def _decoded_lines(unit: Unit, align, stats: ReadStats, strict: bool) -> Iterator[tuple[int, str]]:
    """(byte offset, text) of the unit's lines that are UTF-8 (a leading byte-order mark dropped); the others
    are counted in stats.lines_undecodable, or with strict=True raise CorpusError naming the line."""
    for offset, raw in _raw_lines(unit, align):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            if strict:
                raise CorpusError(f"{unit.path}:{_line_number(unit.path, offset)}: not UTF-8 text ({e})") from e
            stats.lines_undecodable += 1
            continue
        yield offset, line.removeprefix("\ufeff") if offset == 0 else line


def _raw_lines(unit: Unit, align) -> Iterator[tuple[int, bytes]]:
    """(byte offset, bytes) of the lines in [align(start), align(stop)) of a plain file; every line of a gzip
    file (offsets then count decompressed bytes). Raises CorpusError for a broken gzip file."""
    if unit.path.lower().endswith(".gz"):
        offset = 0
        try:
            with gzip.open(unit.path) as f:
                for line in f:
                    yield offset, line
                    offset += len(line)
        except (OSError, EOFError) as e:
            raise CorpusError(f"{unit.path} is not a readable gzip file ({e})") from e
        return
    with open(unit.path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        offset, end = align(f, unit.start, size), align(f, unit.stop, size)
        f.seek(offset)
        while offset < end and (line := f.readline()):         # (the file may have shrunk since)
            yield offset, line
            offset += len(line)


def _line_start(f, offset: int, size: int) -> int:
    """The first offset at or after `offset` where a line begins (the file size if none does)."""
    if offset == 0 or offset >= size:
        return min(offset, size)
    f.seek(offset - 1)
    if f.read(1) != b"\n":
        offset += len(f.readline())
    return offset


def _after_blank_line(f, offset: int, size: int) -> int:
    """B(offset): just after the first blank line that begins at or after `offset` (the file size if none
    does); the file's start and end map to themselves."""
    if offset == 0 or offset >= size:
        return min(offset, size)
    offset = _line_start(f, offset, size)
    f.seek(offset)
    for line in f:
        offset += len(line)
        if not line.decode("utf-8", "replace").strip():       # an undecodable line is not blank
            return offset
    return size


def _line_number(path: str, offset: int) -> int:
    """The 1-based number of the line that begins at byte `offset` (of the decompressed text for gzip)."""
    number = 1
    with gzip.open(path) if path.lower().endswith(".gz") else open(path, "rb") as f:
        while offset > 0:
            chunk = f.read(min(offset, 1 << 20))
            if not chunk:
                break
            number += chunk.count(b"\n")
            offset -= len(chunk)
    return number
