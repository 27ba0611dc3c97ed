import gzip
import json
import random
from pathlib import Path

import pytest

from minibert.training.corpus import (CorpusError, ReadStats, Unit, corpus_bytes, documents_from_text, is_prose,
                                      plan_units, python_docstrings, read_unit, source_files, split_sentences)

WIKI = Path(__file__).resolve().parents[3] / "shared" / "data" / "wikitext-2-raw" / "wiki.valid.raw"
RECORDS = ["First record. It has two sentences.\n\nAnd a line after a blank one.", None, "", "  \n ",
           "Ünïcode prose, fine.", "Last one!\r\nWith a CRLF line."]


def read_all(units, **options):
    stats = ReadStats()
    return [document for unit in units for document in read_unit(unit, stats, **options)], stats


def prose(seed: int = 0) -> str:
    """Documents of random sentences (some multi-byte), separated by blank lines of every kind, one longer
    than any small unit."""
    rng = random.Random(seed)
    words = ["alpha", "Beta", "gamma.", "Delta!", "épée", "naïve?", "Zürich", "x", "(paren)", "日本語."]
    blocks = []
    for i in range(60):
        count = 200 if i == 30 else rng.randint(1, 4)
        lines = [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(count)]
        blocks.append("\n".join(lines))
    text = ""
    for block in blocks:
        text += block + rng.choice(["\n\n", "\n \n", "\n\t\n\n", "\n   \n  \n"])
    return "\n\n" + text


@pytest.mark.parametrize("variant", ["lf", "crlf", "no final newline"])
def test_text_units_read_every_document_once_whatever_the_unit_size(tmp_path, variant):
    text = prose()
    text = {"lf": text, "crlf": text.replace("\n", "\r\n"), "no final newline": text.rstrip() + " tail."}[variant]
    path = tmp_path / "corpus.txt"
    path.write_bytes(text.encode())
    expected = documents_from_text(text)
    assert max(sum(map(len, document)) for document in expected) > 4000       # longer than small units
    for unit_bytes in (50, 97, 1000, 64 << 20):
        units = plan_units([path], unit_bytes=unit_bytes)
        assert corpus_bytes(units) == path.stat().st_size
        assert len(units) == -(-path.stat().st_size // unit_bytes)
        documents, stats = read_all(units)
        assert documents == expected, unit_bytes
        assert stats.documents == len(expected) and stats.records == 0


def test_wikitext_units_match_the_whole_file(tmp_path):
    if not WIKI.is_file():
        pytest.skip("WikiText-2 is not in the shared data")
    with open(WIKI, "rb") as f:
        data = f.read(30_000)
    data = data[:data.rindex(b"\n") + 1]
    path = tmp_path / "wiki.txt"
    path.write_bytes(data)
    expected = documents_from_text(data.decode())
    for unit_bytes in (50, 4096):
        assert read_all(plan_units([path], unit_bytes=unit_bytes))[0] == expected


def test_gzip_is_one_unit_read_like_the_plain_file(tmp_path):
    text = prose(1)
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(text.encode()))
    [unit] = plan_units([tmp_path / "a.txt.gz"], unit_bytes=50)
    assert (unit.kind, unit.start, unit.stop) == ("text", 0, (tmp_path / "a.txt.gz").stat().st_size)
    assert unit.nbytes == len(text.encode())                                    # the gzip trailer's size
    assert read_all([unit])[0] == documents_from_text(text)
    lines = "".join(json.dumps({"text": t}) + "\n" for t in RECORDS)
    (tmp_path / "r.jsonl").write_text(lines)
    (tmp_path / "r.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    [unit] = plan_units([tmp_path / "r.jsonl.gz"])
    assert unit.kind == "jsonl"
    assert read_all([unit])[0] == read_all(plan_units([tmp_path / "r.jsonl"]))[0]


def test_jsonl_records_are_documents_and_bad_ones_are_counted(tmp_path):
    path = tmp_path / "r.jsonl"
    lines = [json.dumps({"text": t, "id": i}) for i, t in enumerate(RECORDS)]
    lines.insert(2, json.dumps({"id": "no text"}))
    lines.insert(4, "   ")                                                      # a blank line: passed over
    path.write_text("\n".join(lines) + "\n")
    for unit_bytes in (30, 1 << 20):
        documents, stats = read_all(plan_units([path], unit_bytes=unit_bytes))
        assert documents == [["First record.", "It has two sentences.", "And a line after a blank one."],
                             ["Ünïcode prose, fine."], ["Last one!", "With a CRLF line."]]
        assert (stats.documents, stats.records, stats.records_skipped, stats.records_with_field) == (3, 7, 4, 6)
        assert stats.first_record == f"{path}:1 (keys: text, id)"
    with pytest.raises(CorpusError, match=f"{path}:2: field 'text' is null"):
        read_all(plan_units([path], unit_bytes=30), strict=True)
    third_line = len(lines[0]) + len(lines[1]) + 2
    with pytest.raises(CorpusError, match=f"{path}:3: field 'text' is missing"):
        read_all([Unit("jsonl", str(path), third_line, path.stat().st_size, 0)], strict=True)


@pytest.mark.parametrize("line, message", [
    ('{"text": "unfinished', "not valid JSON"),
    ('["a", "list"]', "a JSON list, not an object"),
    ('{"text": 42}', "field 'text' holds int '42', not a string"),
    ('{"text": ["a"]}', r"""field 'text' holds list "\['a'\]", not a string"""),
])
def test_bad_jsonl_lines_are_errors_naming_file_and_line(tmp_path, line, message):
    path = tmp_path / "r.json"
    path.write_text('{"text": "Fine."}\n\n' + line + '\n{"text": "Fine again."}\n')
    with pytest.raises(CorpusError, match=f"{path}:3: {message}"):
        read_all(plan_units([path], unit_bytes=5))


def write_records(folder: Path, texts: list) -> dict[str, Path]:
    """The same records as JSONL, parquet (row groups of 2), a saved dataset and a saved DatasetDict."""
    import datasets
    import pyarrow
    import pyarrow.parquet

    paths = {kind: folder / name for kind, name in
             [("jsonl", "r.jsonl"), ("parquet", "r.parquet"), ("arrow", "saved"), ("dict", "saved_dict")]}
    paths["jsonl"].write_text("".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(texts)))
    table = pyarrow.table({"text": texts, "n": list(range(len(texts)))})
    pyarrow.parquet.write_table(table, paths["parquet"], row_group_size=2)
    dataset = datasets.Dataset(table)
    dataset.save_to_disk(paths["arrow"])
    datasets.DatasetDict({"train": dataset, "test": dataset.select([0])}).save_to_disk(paths["dict"])
    return paths


def test_parquet_and_saved_datasets_read_like_jsonl(tmp_path):
    paths = write_records(tmp_path, RECORDS * 3)
    expected, expected_stats = read_all(plan_units([paths["jsonl"]]))
    assert len(plan_units([paths["parquet"]])) == 9                             # one unit per row group
    arrow_units = plan_units([paths["arrow"]], unit_bytes=100)
    assert [unit.kind for unit in arrow_units] == ["arrow"] * len(arrow_units) and len(arrow_units) > 1
    assert [u.stop for u in arrow_units] == [u.start for u in arrow_units[1:]] + [18]
    for kind in ("parquet", "arrow", "dict"):
        documents, stats = read_all(plan_units([paths[kind]], unit_bytes=100))
        assert documents == expected, kind
        assert (stats.records, stats.records_skipped, stats.records_with_field) == (18, 9, 18)
        assert stats.first_record == f"{paths[kind]}:row 0 (keys: text, n)"
    with pytest.raises(CorpusError, match=r"r.parquet:row 1: field 'text' is null"):
        read_all(plan_units([paths["parquet"]]), strict=True)
    with pytest.raises(CorpusError, match=r"saved:row 2: field 'text' is blank"):
        read_all([Unit("arrow", str(paths["arrow"]), 2, 18, 0)], strict=True)


def test_a_missing_column_is_named(tmp_path):
    paths = write_records(tmp_path, ["Some text."])
    for kind in ("parquet", "arrow", "dict"):
        with pytest.raises(CorpusError, match=rf"{paths[kind]} has no column 'body' \(its columns: text, n\)"):
            plan_units([paths[kind]], text_field="body")
    _, stats = read_all(plan_units([paths["jsonl"]]), text_field="body")
    assert (stats.records, stats.records_with_field, stats.documents) == (1, 0, 0)
    import datasets

    datasets.DatasetDict({"validation": datasets.Dataset.from_dict({"text": ["x"]})}).save_to_disk(tmp_path / "v")
    with pytest.raises(CorpusError, match="without a 'train' split.*validation"):
        plan_units([tmp_path / "v"])


def test_undecodable_lines_are_skipped_and_counted_or_named(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"Good line.\r\nAnother.\r\n\xff\xfe bad bytes\r\n\r\nNext document.\r\n")
    for unit_bytes in (4, 1 << 20):
        documents, stats = read_all(plan_units([path], unit_bytes=unit_bytes))
        assert documents == [["Good line.", "Another."], ["Next document."]]
        assert stats.lines_undecodable == 1
    with pytest.raises(CorpusError, match=f"{path}:3: not UTF-8 text"):
        read_all(plan_units([path], unit_bytes=4), strict=True)
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_bytes(b'{"text": "ok"}\n{"text": "\xe9"}\n')
    assert read_all(plan_units([jsonl]))[1].lines_undecodable == 1
    with pytest.raises(CorpusError, match=f"{jsonl}:2: not UTF-8"):
        read_all(plan_units([jsonl]), strict=True)


def test_folders_expand_to_files_and_saved_datasets(tmp_path):
    (tmp_path / "data").mkdir()
    write_records(tmp_path / "data", ["Some text."])
    (tmp_path / "data" / "a.txt").write_text("Plain text.")
    (tmp_path / "data" / "empty.txt").write_text("")
    (tmp_path / "data" / ".hidden.txt").write_text("Not read.")
    (tmp_path / "data" / ".cache").mkdir()
    (tmp_path / "data" / ".cache" / "x.txt").write_text("Not read.")
    units = plan_units([tmp_path / "data", tmp_path / "data" / "a.txt"])
    assert [(unit.kind, Path(unit.path).name) for unit in units] == [
        ("text", "a.txt"), ("jsonl", "r.jsonl"), ("parquet", "r.parquet"), ("arrow", "saved"),
        ("arrow", "saved_dict"), ("text", "a.txt")]
    files = source_files(units)
    assert files[:3] == [tmp_path / "data" / name for name in ("a.txt", "r.jsonl", "r.parquet")]
    assert tmp_path / "data" / "saved" / "dataset_info.json" in files and len(files) == len(set(files))
    assert corpus_bytes(units) == sum(unit.nbytes for unit in units) > 0
    assert len(read_all(units)[0]) == 6


def test_hub_datasets_stream_the_train_split(tmp_path):
    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in RECORDS))
    (folder / "test.jsonl").write_text(json.dumps({"text": "Not in train."}) + "\n")
    units = plan_units([f"hub:{folder}"])
    assert [(unit.kind, unit.start, unit.stop) for unit in units] == [("hub", 0, 1)]
    assert source_files(units) == [folder / "test.jsonl", folder / "train.jsonl"]
    documents, stats = read_all(units)
    assert documents == read_all(plan_units([folder / "train.jsonl"]))[0]
    assert (stats.records, stats.records_skipped) == (6, 3)
    (tmp_path / "t.txt").write_text("One line.\nTwo lines.\n\n\nOther document.\n")
    assert read_all(plan_units([f"hub:{tmp_path / 't.txt'}"]))[0] == [["One line.", "Two lines."], ["Other document."]]


def test_bad_corpus_paths_are_errors(tmp_path):
    with pytest.raises(CorpusError, match=f"corpus path {tmp_path / 'missing'} does not exist"):
        plan_units([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="holds no files"):
        plan_units([tmp_path / "empty"])
    (tmp_path / "empty" / "a.txt").write_text("")
    (tmp_path / "empty" / "b.jsonl").write_text("")
    with pytest.raises(CorpusError, match="holds no text"):
        plan_units([tmp_path / "empty"])


def test_the_default_corpus_is_the_stdlib_docstrings():
    assert plan_units(None) == plan_units([]) == [Unit("stdlib", "", 0, 0, 1 << 20)]
    stats = ReadStats()
    documents = read_unit(plan_units(None)[0], stats)
    first = next(documents)
    documents.close()
    assert first and all(isinstance(s, str) and s for s in first) and stats.documents == 1
    assert source_files(plan_units(None)) == []


def test_the_docstring_corpus_is_prose_once_each_in_hashed_order():
    documents = python_docstrings()
    texts = ["\n".join(d) for d in documents]
    assert len(set(texts)) == len(texts)                          # a docstring copied between modules: once
    sentences = [s for d in documents for s in d]
    assert all(is_prose(s) for s in sentences)
    assert sum(s[0].islower() for s in sentences) < 0.05 * len(sentences)   # wrapped lines joined, not cut
    held_out = documents[-len(documents) // 50:]                  # pretrain's default held-out 2%: all over stdlib
    assert not any("XML" in "".join(d) for d in held_out[:10]) or len(held_out) > 100


@pytest.mark.parametrize("sentence, prose", [
    ("Return a new list of the items.", True), ("If 'x' is None, the (default) value is used.", True),
    ("splitattr('/path;attr1=value1') -> '/path', ['attr1=value1'].", False), ("Decimal('3.1415')", False),
    ("| number (real) | float |", False), ("Tuesday, 08-Feb-94 14:15:29 GMT -- old rfc850 HTTP format", False)])
def test_is_prose_keeps_sentences_of_plain_words(sentence, prose):
    assert is_prose(sentence) is prose


def test_read_stats_add_up():
    a = ReadStats(documents=1, records=2, records_skipped=1, records_with_field=2, first_record="a:1")
    b = ReadStats(documents=3, lines_undecodable=4, first_record="b:1")
    assert ReadStats() + a + b == ReadStats(4, 2, 1, 2, 4, "a:1")
    assert sum([b, a], ReadStats()).first_record == "b:1"


def test_split_sentences_and_documents_from_text():
    assert split_sentences("One thing. Another one! And a third? yes") == [
        "One thing.", "Another one!", "And a third? yes"]
    assert documents_from_text("a b.\r\nc d.\r\n\r\n = Title = \r\n") == [["a b.", "c d."], ["= Title ="]]
