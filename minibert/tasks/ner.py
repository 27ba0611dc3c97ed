"""CoNLL-style named-entity data: one `word<TAB>tag` per line (or whitespace-separated columns, the tag last),
a blank line between sentences, BIO tags (`O`, `B-person`, `I-person`); `-DOCSTART-` lines are skipped.

Word pieces and labels (Devlin et al., 2019, §5.3): each word is split into pieces separately; its first piece
carries the word's tag and the other pieces -100 (ignored by the loss), so the model predicts one tag per word,
read back at the first pieces. A word with no piece (a character the normaliser deletes) and the words past
`max_length` are not seen by the model: they are predicted `O`, and `encode` counts them.
A malformed line, or a tag outside the model's classes, is an error naming the file and line.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from minibert.losses import IGNORE_INDEX

TAG = re.compile(r"^(O|[BI]-\S+)$")
OUTSIDE = "O"


@dataclasses.dataclass
class Sentence:
    words: list[str]
    tags: list[str]
    lines: list[int]      # the line of each word, for error messages
    path: str


def read_conll(path: str | Path) -> list[Sentence]:
    path = Path(path)
    sentences, words, tags, lines = [], [], [], []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                if words:
                    sentences.append(Sentence(words, tags, lines, str(path)))
                    words, tags, lines = [], [], []
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            if len(fields) < 2 or not fields[0] or not TAG.match(fields[-1]):
                raise ValueError(f"{path}, line {number}: expected 'word<TAB>tag' with a BIO tag (O, B-type, "
                                 f"I-type), got {line!r}")
            if fields[0] == "-DOCSTART-":
                continue
            words.append(fields[0])
            tags.append(fields[-1])
            lines.append(number)
    if words:
        sentences.append(Sentence(words, tags, lines, str(path)))
    if not sentences:
        raise ValueError(f"{path} holds no sentence")
    return sentences


def label_names(sentences: list[Sentence]) -> list[str]:
    """`O`, then for every entity type of the data (alphabetical) its B- and I- tags (both, even when one of
    them does not occur)."""
    kinds = sorted({t[2:] for s in sentences for t in s.tags} - {""})
    return [OUTSIDE, *(f"{prefix}-{kind}" for kind in kinds for prefix in "BI")]


@dataclasses.dataclass
class EncodedSentences:
    arrays: dict[str, np.ndarray]     # input_ids, token_type_ids, attention_mask, labels: (n, seq)
    first_pieces: list[list[int | None]]  # per sentence, per word: the position of its first piece, or None
    unseen_words: int                 # words the model does not see (no piece, or truncated)


def encode(tokenizer, sentences: list[Sentence], label2id: dict[str, int], max_length: int) -> EncodedSentences:
    """Pieces of every word in the tokenizer's template (`[CLS] … [SEP]`), the first piece labelled; padded to the
    longest ≤ max_length."""
    rows, first_pieces, unseen = [], [], 0
    body = max_length - tokenizer.num_special_tokens_to_add()
    for sentence in sentences:
        ids, labels, firsts, full = [], [], [], False
        for word, tag, number in zip(sentence.words, sentence.tags, sentence.lines):
            if tag not in label2id:
                raise ValueError(f"{sentence.path}, line {number}: tag {tag!r} is not one of the model's classes "
                                 f"{sorted(label2id, key=label2id.get)}")
            pieces = [] if full else tokenizer.encode(word, add_special_tokens=False).ids
            full = full or len(ids) + len(pieces) > body          # truncated: this word and every later one
            if not pieces or full:
                unseen += 1
                firsts.append(None)
                continue
            firsts.append(len(ids))
            ids += pieces
            labels += [label2id[tag]] + [IGNORE_INDEX] * (len(pieces) - 1)
        row = tokenizer.build_inputs_with_special_tokens(ids)
        positions = [i for i, special in enumerate(tokenizer.get_special_tokens_mask(ids)) if not special]
        row_labels = [IGNORE_INDEX] * len(row)
        for position, label in zip(positions, labels):
            row_labels[position] = label
        rows.append((row, row_labels))
        first_pieces.append([None if f is None else positions[f] for f in firsts])
    length = max(len(ids) for ids, _ in rows)
    arrays = {"input_ids": np.full((len(rows), length), tokenizer.pad_token_id, np.int32),
              "token_type_ids": np.zeros((len(rows), length), np.int32),
              "attention_mask": np.zeros((len(rows), length), np.int32),
              "labels": np.full((len(rows), length), IGNORE_INDEX, np.int32)}
    for row, (ids, labels) in enumerate(rows):
        arrays["input_ids"][row, :len(ids)] = ids
        arrays["attention_mask"][row, :len(ids)] = 1
        arrays["labels"][row, :len(ids)] = labels
    return EncodedSentences(arrays, first_pieces, unseen)


def word_tags(predicted: np.ndarray, first_pieces: list[list[int | None]], id2label: dict[int, str]) -> list[list[str]]:
    """Per-word tags from per-piece class ids (n, seq), read at each word's first piece; unseen words are `O`."""
    return [[OUTSIDE if p is None else id2label[int(predicted[row, p])] for p in firsts]
            for row, firsts in enumerate(first_pieces)]
