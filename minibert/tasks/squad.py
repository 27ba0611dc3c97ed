"""SQuAD v1.1 extractive question answering (Rajpurkar et al., 2016; Devlin et al., 2019, §4.2).

Reading: the official JSON (`data` → paragraphs → qas), plain or zipped. Each question keeps every gold answer
(text and character start); training uses the first.

Windows (the original BERT `run_squad.py`): a context longer than fits beside the question is cut into windows
of context tokens `[CLS] question [SEP] window [SEP]`; window k starts k·`doc_stride` tokens in (`doc_stride`
is the step between windows, as there — Hugging Face's tokenizers call the overlap `stride`). Each piece keeps
its character offsets in the context. The answer's start / end token is the training label of every window that
holds the whole answer; the other windows point at [CLS] (position 0), "no answer here". Of several gold
answers, the first whose ends fall on piece boundaries is the label (so that the span the model learns cuts
back to exactly that text), else the first.

Post-processing (as Hugging Face's `postprocess_qa_predictions`): for each question, over all its windows, the
`n_best` highest start and end logits form candidate spans (both in the context, end ≥ start, at most
`max_answer_length` tokens); the best by start + end logit is the answer, cut from the context by the offsets.

A question none of whose answers is at its stated position in the context gets no label (its windows point at
[CLS]); it is counted and named in `Features.skipped`, and left out of training.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np


@dataclasses.dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list[str]
    answer_starts: list[int]


def read_squad(path: str | Path) -> list[QAExample]:
    """Questions of a SQuAD JSON file, or of the one JSON file inside a .zip."""
    path = Path(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(".json") and not n.startswith("__MACOSX")]
            if len(names) != 1:
                raise ValueError(f"{path} should hold one .json file, it holds {names}")
            data = json.loads(archive.read(names[0]).decode("utf-8"))
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
    if "data" not in data:
        raise ValueError(f"{path} is not SQuAD JSON: no 'data' key")
    examples = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                examples.append(QAExample(qa["id"], qa["question"], paragraph["context"],
                                          [a["text"] for a in qa["answers"]],
                                          [a["answer_start"] for a in qa["answers"]]))
    return examples


@dataclasses.dataclass
class Features:
    """Windows of every example: model inputs (n_windows, max_length), labels (n_windows,), and for each
    window its example and the context character offsets of its pieces (None outside the context)."""
    arrays: dict[str, np.ndarray]
    example_index: np.ndarray
    offsets: list[list[tuple[int, int] | None]]
    answered: np.ndarray          # (n_windows,) bool: its example's answer was located (False: no label at all)
    skipped: list[str]            # "id: why" for every example whose answer could not be located


def answer_tokens(example: QAExample, starts: list[int], ends: list[int]) -> tuple[int, int] | None:
    """(first, last) context-token indices of a gold answer, given the context pieces' start and end characters:
    the first answer whose ends fall on piece boundaries, else the first one found at its `answer_start`;
    None when no answer text is at its stated position (or covers no piece)."""
    found = []
    for text, start in zip(example.answers, example.answer_starts):
        end = start + len(text)
        if example.context[start:end] != text:
            continue
        first, last = bisect.bisect_right(ends, start), bisect.bisect_left(starts, end) - 1  # pieces overlapping it
        if first > last:
            continue
        if starts[first] == start and ends[last] == end:
            return first, last
        found.append((first, last))
    return found[0] if found else None


def prepare_features(tokenizer, examples: list[QAExample], *, max_length: int = 384, doc_stride: int = 128,
                     max_query_length: int = 64) -> Features:
    """Every example's windows `[CLS] question [SEP] context [SEP]` (the tokenizer's template) with start/end
    labels (0 = [CLS] where the window lacks the answer)."""
    if doc_stride < 1:
        raise ValueError(f"doc_stride must be at least 1, got {doc_stride}")
    contexts: dict[str, tuple] = {}  # ids, offsets, piece starts, piece ends; a context is shared by ~5 questions
    rows, example_index, all_offsets, answered, skipped = [], [], [], [], []
    for index, example in enumerate(examples):
        query = tokenizer.encode(example.question, add_special_tokens=False).ids[:max_query_length]
        if example.context not in contexts:
            encoding = tokenizer.encode(example.context, add_special_tokens=False)
            ids, offsets = encoding.ids, encoding.offsets
            contexts[example.context] = ids, offsets, [a for a, _ in offsets], [b for _, b in offsets]
        ids, offsets, starts, ends = contexts[example.context]
        room = max_length - len(query) - tokenizer.num_special_tokens_to_add(pair=True)
        if room < 1:
            raise ValueError(f"max_length {max_length} leaves no room for the context after a "
                             f"{len(query)}-token question")
        answer = answer_tokens(example, starts, ends)
        if answer is None and example.answers:  # (a question without gold answers is for prediction only)
            skipped.append(f"{example.id}: no answer of {example.answers} is at its answer_start in the context")
        start = 0
        while True:
            length = min(len(ids) - start, room)
            inputs = tokenizer.prepare_for_model(query, ids[start:start + length])
            window, sequence = inputs["input_ids"], inputs.sequence_ids()
            first = sequence.index(1)                                       # [CLS] query [SEP] | context
            start_position = end_position = 0
            if answer is not None and start <= answer[0] and answer[1] < start + length:
                start_position, end_position = first + answer[0] - start, first + answer[1] - start
            rows.append((window, inputs["token_type_ids"], start_position, end_position))
            all_offsets.append([offsets[start + k - first] if s == 1 else None for k, s in enumerate(sequence)])
            example_index.append(index)
            answered.append(answer is not None)
            if start + length >= len(ids):
                break
            start += min(length, doc_stride)
    n = len(rows)
    arrays = {"input_ids": np.full((n, max_length), tokenizer.pad_token_id, np.int32),
              "token_type_ids": np.zeros((n, max_length), np.int32),
              "attention_mask": np.zeros((n, max_length), np.int32),
              "start_positions": np.array([r[2] for r in rows], np.int32),
              "end_positions": np.array([r[3] for r in rows], np.int32)}
    for row, (window, types, _, _) in enumerate(rows):
        arrays["input_ids"][row, :len(window)] = window
        arrays["token_type_ids"][row, :len(window)] = types
        arrays["attention_mask"][row, :len(window)] = 1
    return Features(arrays, np.array(example_index), all_offsets, np.array(answered, bool), skipped)


def postprocess(examples: list[QAExample], features: Features, start_logits: np.ndarray, end_logits: np.ndarray, *,
                n_best: int = 20, max_answer_length: int = 30, top_k: int = 1,
                probabilities: bool = False) -> list[list[dict]]:
    """The `top_k` best answers of every example: {"answer", "start", "end" (context characters), "score"}.

    The score is start + end logit; with `probabilities`, the product of the start and end probabilities,
    each a softmax over the window's context tokens (Hugging Face's question-answering pipeline). The answers are
    distinct spans: overlapping windows that propose the same characters give one answer, with the best score."""
    candidates: list[list[dict]] = [[] for _ in examples]
    for row, index in enumerate(features.example_index):
        offsets = features.offsets[row]
        context = np.array([o is not None for o in offsets] + [False] * (len(start_logits[row]) - len(offsets)))
        starts, ends = np.asarray(start_logits[row], np.float64), np.asarray(end_logits[row], np.float64)
        if probabilities:
            starts, ends = _log_softmax_over(starts, context), _log_softmax_over(ends, context)
        best_starts = [i for i in np.argsort(-starts)[:n_best] if context[i]]
        best_ends = [j for j in np.argsort(-ends)[:n_best] if context[j]]
        for i in best_starts:
            for j in best_ends:
                if i <= j < i + max_answer_length:
                    a, b = offsets[i][0], offsets[j][1]
                    score = starts[i] + ends[j]
                    candidates[index].append({"score": float(np.exp(score)) if probabilities else float(score),
                                              "start": a, "end": b, "answer": examples[index].context[a:b]})
    return [_distinct_spans(sorted(c, key=lambda c: -c["score"]))[:top_k] for c in candidates]


def _distinct_spans(ranked: list[dict]) -> list[dict]:
    """The first (best) answer of each (start, end) character span."""
    seen = set()
    return [a for a in ranked if (a["start"], a["end"]) not in seen and not seen.add((a["start"], a["end"]))]


def _log_softmax_over(logits: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """log softmax over the kept positions; -inf elsewhere."""
    kept = np.where(keep, logits, -np.inf)
    top = kept.max()
    return kept - top - np.log(np.exp(kept - top).sum())


def predictions(examples: list[QAExample], features: Features, start_logits, end_logits, **options) -> dict[str, str]:
    """{question id: best answer text}, "" when no span qualifies: the input of `metrics.squad_metrics`."""
    best = postprocess(examples, features, start_logits, end_logits, **options)
    return {e.id: (b[0]["answer"] if b else "") for e, b in zip(examples, best)}
