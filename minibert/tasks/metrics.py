"""Evaluation metrics of the downstream tasks, as their benchmarks define them.

- Classification (GLUE, Wang et al. 2019): accuracy; F1 of the positive class (label id 1) for two classes,
  macro-averaged F1 for more.
- Named entities (CoNLL / WNUT, scored as `seqeval` and `conlleval` do): an entity is a (type, first word, last
  word) span read from BIO tags; precision, recall and F1 count exact span-and-type matches, micro-averaged,
  and per type.
- Extractive QA (SQuAD v1.1, Rajpurkar et al. 2016, the official `evaluate-v1.1.py`): answers are normalised
  (lower case, punctuation and the articles a/an/the removed, whitespace collapsed); exact match and token-level
  F1 take the best over the gold answers; both are averaged over questions, in percent.
"""

from __future__ import annotations

import collections
import re
import string

import numpy as np


# ---- classification --------------------------------------------------------------------------------------------

def f1_of(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """(precision, recall, F1) from counts; 0 where undefined."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def classification_metrics(predictions, labels, num_labels: int) -> dict[str, float]:
    """accuracy and F1 (positive class 1 when binary, else macro) of class-id predictions."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"{predictions.shape[0]} predictions for {labels.shape[0]} labels")
    def counts(c: int) -> tuple[int, int, int]:  # true positives, false positives, false negatives of class c
        hit, gold = predictions == c, labels == c
        return int(np.sum(hit & gold)), int(np.sum(hit & ~gold)), int(np.sum(~hit & gold))

    f1 = f1_of(*counts(1))[2] if num_labels == 2 else float(np.mean([f1_of(*counts(c))[2] for c in range(num_labels)]))
    return {"accuracy": float(np.mean(predictions == labels)) if labels.size else 0.0, "f1": f1}


def majority_baseline(train_labels, eval_labels) -> float:
    """Accuracy of always predicting the most frequent training label."""
    majority = collections.Counter(train_labels).most_common(1)[0][0]
    return float(np.mean(np.asarray(eval_labels) == majority))


# ---- named entities ------------------------------------------------------------------------------------------

def entity_spans(tags: list[str]) -> set[tuple[str, int, int]]:
    """(type, start, end) inclusive word spans from BIO tags. As conlleval: an I- tag that does not continue an
    entity of its type (after O or another type) starts one."""
    spans, start, kind = set(), None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, this = tag.partition("-")
        begins = prefix == "B" or (prefix == "I" and this != kind)
        if kind is not None and (prefix == "O" or begins):
            spans.add((kind, start, i - 1))
            kind = None
        if begins:
            start, kind = i, this
    return spans


def entity_metrics(predictions: list[list[str]], references: list[list[str]]) -> dict:
    """Micro precision / recall / F1 over exact entity matches, and per type: {"precision", "recall", "f1",
    "per_type": {type: {"precision", "recall", "f1", "support"}}}."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predicted sentences for {len(references)} references")
    counts = collections.defaultdict(lambda: [0, 0, 0])  # type → [tp, fp, fn]
    for i, (predicted, gold) in enumerate(zip(predictions, references)):
        if len(predicted) != len(gold):
            raise ValueError(f"sentence {i}: {len(predicted)} predicted tags for {len(gold)} words")
        p, g = entity_spans(predicted), entity_spans(gold)
        for span in p | g:
            counts[span[0]][0 if span in p and span in g else 1 if span in p else 2] += 1
    tp, fp, fn = (sum(c[k] for c in counts.values()) for k in range(3))
    precision, recall, f1 = f1_of(tp, fp, fn)
    per_type = {kind: dict(zip(("precision", "recall", "f1"), f1_of(*c)), support=c[0] + c[2])
                for kind, c in sorted(counts.items())}
    return {"precision": precision, "recall": recall, "f1": f1, "per_type": per_type}


# ---- SQuAD ---------------------------------------------------------------------------------------------------

def normalize_answer(text: str) -> str:
    """The official SQuAD normalisation: lower, drop punctuation, drop articles, collapse whitespace."""
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def token_f1(prediction: str, truth: str) -> float:
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = sum((collections.Counter(predicted) & collections.Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(predictions: dict[str, str], answers: dict[str, list[str]]) -> dict[str, float]:
    """{"exact_match", "f1"} in percent over the questions of `answers` (id → gold texts); a question
    without a prediction scores 0, as in the official script."""
    em = f1 = 0.0
    for qid, truths in answers.items():
        if qid in predictions:
            em += max(exact_match(predictions[qid], t) for t in truths)
            f1 += max(token_f1(predictions[qid], t) for t in truths)
    n = max(len(answers), 1)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}
