"""GLUE-style sentence (pair) classification data: TSV files with a header row (Wang et al., 2019).

    sentence\tlabel                      SST-2, CoLA (single sentences)
    sentence1\tsentence2\tlabel         MRPC, RTE, WNLI, STS-B; also question1/question2 (QQP),
                                         question/sentence (QNLI), premise/hypothesis (MNLI-style)

Rows become `[CLS] A [SEP] (B [SEP])` with token types 0 / 1 (Devlin et al., 2019, §4.1), padded to the
longest row (at most `max_length`) so that a whole split has one shape. Class names are the label column's
values; their order — numeric when every name is an integer, else alphabetical — gives the class ids. A
malformed row, or a label outside the classes the model was built for, is an error naming the file and line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

TEXT_COLUMNS = (("sentence1", "sentence2"), ("question1", "question2"), ("question", "sentence"),
                ("premise", "hypothesis"), ("sentence",), ("text",))


@dataclasses.dataclass
class ClassificationExample:
    text: str
    pair: str | None
    label: str | None     # None in an unlabelled (test) file
    where: str            # "file, line n", for error messages


def read_tsv(path: str | Path, *, label_column: str = "label") -> list[ClassificationExample]:
    """Rows of a GLUE-style TSV; the text columns are found by name (TEXT_COLUMNS), the label column may be absent."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise ValueError(f"{path} is empty: expected a header row such as 'sentence\\tlabel'")
    header = lines[0].split("\t")
    columns = next((c for c in TEXT_COLUMNS if all(name in header for name in c)), None)
    if columns is None:
        raise ValueError(f"{path}, line 1: no text column in the header {header}; expected one of "
                         f"{', '.join('/'.join(c) for c in TEXT_COLUMNS)}")
    text_index = [header.index(name) for name in columns]
    label_index = header.index(label_column) if label_column in header else None
    examples = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        row = line.split("\t")
        if len(row) != len(header):
            raise ValueError(f"{path}, line {number}: {len(row)} tab-separated fields, the header has {len(header)}")
        texts = [row[i].strip() for i in text_index]
        label = None if label_index is None else row[label_index].strip()
        if label == "":
            raise ValueError(f"{path}, line {number}: empty label")
        examples.append(ClassificationExample(texts[0], texts[1] if len(texts) > 1 else None, label,
                                              f"{path}, line {number}"))
    if not examples:
        raise ValueError(f"{path} has a header but no rows")
    return examples


def label_names(examples: list[ClassificationExample]) -> list[str]:
    """The classes in id order: numeric when every label is an integer ("0", "1"), else alphabetical."""
    names = sorted({e.label for e in examples if e.label is not None})
    if not names:
        raise ValueError("no labelled example: cannot tell the classes")
    if all(n.lstrip("-").isdigit() for n in names):
        names.sort(key=int)
    elif all(_is_number(n) for n in names):
        raise ValueError(f"the labels look continuous ({', '.join(names[:3])}, …): regression (STS-B) is not a "
                         f"classification task")
    return names


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def label_ids(examples: list[ClassificationExample], label2id: dict[str, int]) -> np.ndarray:
    """Class ids of the examples; a label the model has no class for is an error naming its file and line."""
    ids = []
    for e in examples:
        if e.label is None:
            raise ValueError(f"{e.where}: no label (the file has no {'label'!r} column), so it cannot be scored")
        if e.label not in label2id:
            raise ValueError(f"{e.where}: label {e.label!r} is not one of the model's classes "
                             f"{sorted(label2id, key=label2id.get)}")
        ids.append(label2id[e.label])
    return np.array(ids, np.int32)


def encode(tokenizer, examples: list[ClassificationExample], max_length: int,
           label2id: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """input_ids, token_type_ids, attention_mask (n, seq) padded to the longest row ≤ max_length; with
    `label2id`, labels (n,)."""
    texts = [e.text for e in examples]
    pairs = [e.pair for e in examples] if examples[0].pair is not None else None
    encodings = tokenizer.encode_batch(texts, pairs, max_length=max_length, truncation=True)
    length = max(len(e) for e in encodings)
    batch = {"input_ids": np.full((len(encodings), length), tokenizer.pad_token_id, np.int32),
             "token_type_ids": np.zeros((len(encodings), length), np.int32),
             "attention_mask": np.zeros((len(encodings), length), np.int32)}
    for row, e in enumerate(encodings):
        batch["input_ids"][row, :len(e)] = e.ids
        batch["token_type_ids"][row, :len(e)] = e.type_ids
        batch["attention_mask"][row, :len(e)] = 1
    if label2id is not None:
        batch["labels"] = label_ids(examples, label2id)
    return batch
