"""Metrics as the benchmarks define them: seqeval/conlleval entity spans, the official SQuAD normalisation."""

import numpy as np
import pytest

from minibert.tasks import metrics


@pytest.mark.parametrize("tags,spans", [
    (["B-PER", "I-PER", "O", "B-LOC"], {("PER", 0, 1), ("LOC", 3, 3)}),
    (["B-PER", "B-PER"], {("PER", 0, 0), ("PER", 1, 1)}),              # B after B: two entities
    (["O", "I-ORG", "I-ORG"], {("ORG", 1, 2)}),                        # a stray I- starts one (conlleval)
    (["B-PER", "I-LOC", "I-LOC"], {("PER", 0, 0), ("LOC", 1, 2)}),     # a type change ends one
    (["I-a", "I-a", "O", "I-a"], {("a", 0, 1), ("a", 3, 3)}),
    (["O", "O"], set()),
])
def test_entity_spans(tags, spans):
    assert metrics.entity_spans(tags) == spans


def test_entity_f1_counts_exact_span_and_type_matches():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-ORG"]]
    scores = metrics.entity_metrics(predicted, gold)
    # true: PER(0-1), ORG(1: 0); false positives: ORG(0: 3), ORG(1: 1); missed: LOC(0: 3)
    assert scores["precision"] == pytest.approx(2 / 4) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert scores["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    with pytest.raises(ValueError, match="sentence 1: 1 predicted tags for 2 words"):
        metrics.entity_metrics([gold[0], ["O"]], gold)


def test_squad_normalisation_exact_match_and_f1():
    assert metrics.normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert metrics.exact_match("an apple", "Apple.") == 1.0
    assert metrics.token_f1("the Denver Broncos team", "Denver Broncos") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert metrics.token_f1("Carolina", "Denver") == 0.0
    scores = metrics.squad_metrics({"q1": "Denver Broncos", "q2": "wrong"}, {"q1": ["Broncos", "Denver Broncos"],
                                                                             "q2": ["right"], "q3": ["x"]})
    assert scores == {"exact_match": pytest.approx(100 / 3), "f1": pytest.approx(100 / 3)}


def test_classification_metrics_and_baseline():
    scores = metrics.classification_metrics(np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1]), 2)
    assert scores["accuracy"] == 0.75 and scores["f1"] == pytest.approx(0.8)
    three = metrics.classification_metrics(np.array([0, 1, 2]), np.array([0, 1, 1]), 3)
    assert three["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert metrics.majority_baseline(["1", "1", "0"], ["1", "0"]) == 0.5
