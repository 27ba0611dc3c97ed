"""Pipelines against `transformers.pipeline` on the same random checkpoint and vocabulary: text-classification
(top label, every label), token-classification (each aggregation strategy); question-answering's format and
its span scores (transformers 5 has no question-answering pipeline to compare with)."""

import numpy as np
import pytest

from minibert.checkpoints.hf import from_pretrained
from minibert.tasks import pipelines, squad
from minibert.tokenization.tokenizer import WordPieceTokenizer
from tests.conftest import save_reference

PIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "john", "smith", "lives", "in", "new", "york", "city", "the",
          "big", "apple", "jo", "##hn", "##son", "##s", "works", "at", "acme", "corp", ".", ",", "who", "where", "does"]
CONFIG = dict(vocab_size=len(PIECES), hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37)
TEXTS = ["john smith lives in new york city.", "Johnson works at Acme Corp, the big apple!", "jojohns xyz"]
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def build(tmp_path, head: str, **config):
    WordPieceTokenizer({t: i for i, t in enumerate(PIECES)}).save_pretrained(tmp_path)
    save_reference(f"Bert{head}", "BertConfig", tmp_path, seed=3, **CONFIG, **config)
    return from_pretrained(tmp_path), WordPieceTokenizer.from_pretrained(tmp_path)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    path = tmp_path_factory.mktemp("classifier")
    return path, *build(path, "ForSequenceClassification", id2label={0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"})


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    path = tmp_path_factory.mktemp("tagger")
    return path, *build(path, "ForTokenClassification", id2label=dict(enumerate(TAGS)))


def assert_same(ours, theirs):
    """Same structure, strings and offsets; scores within 1e-5."""
    if isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
        return
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        if key == "score":
            assert ours[key] == pytest.approx(float(value), abs=1e-5)
        else:
            assert ours[key] == value, key


@pytest.mark.parametrize("top_k", [1, 2, None])
def test_text_classification_matches_transformers(classifier, top_k):
    import transformers

    path, model, tokenizer = classifier
    reference = transformers.pipeline("text-classification", model=str(path))
    kwargs = {} if top_k == 1 else {"top_k": top_k}
    assert_same(pipelines.text_classification(model, tokenizer, TEXTS, top_k=top_k), reference(TEXTS, **kwargs))
    assert_same(pipelines.text_classification(model, tokenizer, TEXTS[0], top_k=top_k), reference(TEXTS[0], **kwargs))


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification_matches_transformers(tagger, strategy):
    import transformers

    path, model, tokenizer = tagger
    reference = transformers.pipeline("token-classification", model=str(path), aggregation_strategy=strategy)
    for text in TEXTS:
        ours = pipelines.token_classification(model, tokenizer, text, aggregation_strategy=strategy)
        theirs = [{k: (int(v) if k in ("index", "start", "end") else v) for k, v in e.items()} for e in reference(text)]
        assert ours, "the random tagger tags something"
        assert_same(ours, theirs)


def test_question_answering_returns_spans_of_the_context(tmp_path):
    model, tokenizer = build(tmp_path, "ForQuestionAnswering")
    context = "john smith lives in new york city . " * 20          # 160 tokens: several windows of 48
    best = pipelines.question_answering(model, tokenizer, "where does john smith lives", context, top_k=3,
                                        max_seq_len=48, doc_stride=16)
    assert len(best) == 3 and best[0]["score"] >= best[1]["score"] >= best[2]["score"] > 0
    for answer in best:
        assert set(answer) == {"score", "start", "end", "answer"} and answer["score"] <= 1
        assert answer["answer"] == context[answer["start"]:answer["end"]] != ""
    one = pipelines.question_answering(model, tokenizer, "who", "john smith", max_answer_len=1)
    assert isinstance(one, dict) and one["answer"] in ("john", "smith")


def test_span_scores_are_probabilities_over_the_context():
    """p(start) p(end), each a softmax over the window's context tokens only."""
    example = squad.QAExample("q", "who", "ab cd", [], [])
    offsets = [[None, None, None, (0, 2), (3, 5), None]]
    features = squad.Features({"input_ids": np.zeros((1, 6))}, np.array([0]), offsets, np.array([True]), [])
    start = np.array([[9.0, 9.0, 9.0, 1.0, 0.0, 9.0]])
    end = np.array([[9.0, 9.0, 9.0, 0.0, 2.0, 9.0]])
    best = squad.postprocess([example], features, start, end, top_k=3, probabilities=True)[0]
    p_start, p_end = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum(), np.exp([0.0, 2.0]) / np.exp([0.0, 2.0]).sum()
    assert [b["answer"] for b in best] == ["ab cd", "cd", "ab"]
    np.testing.assert_allclose([b["score"] for b in best], [p_start[0] * p_end[1], p_start[1] * p_end[1],
                                                            p_start[0] * p_end[0]], rtol=1e-12)


# ---- issue #15: scores by problem type, multi-mask fill-mask, distinct QA spans, missing heads, features -------

@pytest.mark.parametrize("labels", [
    dict(num_labels=1, problem_type="regression"),                   # the raw score (was sigmoid(score))
    dict(num_labels=1),                                                # one label, no problem type: a sigmoid
    dict(id2label={0: "A", 1: "B", 2: "C"}, problem_type="multi_label_classification"),   # a sigmoid per label
    dict(num_labels=2, problem_type="regression"),                     # regression on two outputs: raw
])
def test_text_classification_scores_follow_the_problem_type(tmp_path, labels):
    import transformers

    model, tokenizer = build(tmp_path, "ForSequenceClassification", **labels)
    reference = transformers.pipeline("text-classification", model=str(tmp_path))
    assert_same(pipelines.text_classification(model, tokenizer, TEXTS, top_k=None), reference(TEXTS, top_k=None))
    assert_same(pipelines.text_classification(model, tokenizer, TEXTS), reference(TEXTS))
    raw = pipelines.text_classification(model, tokenizer, TEXTS[0], top_k=None, function_to_apply="none")
    assert_same(raw, reference(TEXTS[0], top_k=None, function_to_apply="none"))
    with pytest.raises(ValueError, match="function_to_apply 'tanh'"):
        pipelines.text_classification(model, tokenizer, TEXTS, function_to_apply="tanh")


@pytest.fixture(scope="module")
def masked_lm(tmp_path_factory):
    path = tmp_path_factory.mktemp("masked_lm")
    return path, *build(path, "ForMaskedLM")


@pytest.mark.parametrize("text", ["the [MASK] sat on the [MASK].", "john [MASK] lives in new york city.",
                                  "[MASK] works at acme [MASK], the big [MASK]!"])
def test_fill_mask_matches_transformers(masked_lm, text):
    """Several masks: each candidate's sequence keeps the other masks (and the special tokens), as transformers
    writes it; one mask: the plain text. transformers returns one mask's candidates unnested."""
    import transformers

    path, model, tokenizer = masked_lm
    theirs = transformers.pipeline("fill-mask", model=str(path))(text, top_k=4)
    ours = pipelines.fill_mask(model, tokenizer, text, top_k=4)
    assert_same(ours if text.count("[MASK]") > 1 else ours[0], theirs)
    if text.count("[MASK]") > 1:
        assert all(c["sequence"].count("[MASK]") == text.count("[MASK]") - 1 for c in ours[0])


def test_question_answering_answers_are_distinct_spans(tmp_path):
    """A context of several overlapping windows: a span two windows propose fills one of the top_k slots."""
    model, tokenizer = build(tmp_path, "ForQuestionAnswering")
    context = "john smith lives in new york city . " * 12
    best = pipelines.question_answering(model, tokenizer, "where does john smith lives", context, top_k=300,
                                        max_seq_len=48, doc_stride=8)
    spans = [(a["start"], a["end"]) for a in best]
    assert len(best) == 300 and len(set(spans)) == len(spans)
    assert [a["score"] for a in best] == sorted((a["score"] for a in best), reverse=True)


def test_overlapping_windows_propose_a_span_once():
    """Two windows share the context's "cd": its best score counts, once."""
    example = squad.QAExample("q", "who", "ab cd ef", [], [])
    offsets = [[None, (0, 2), (3, 5), None], [None, (3, 5), (6, 8), None]]
    features = squad.Features({"input_ids": np.zeros((2, 4))}, np.array([0, 0]), offsets, np.array([True, True]), [])
    start = np.array([[0.0, 0.0, 5.0, 0.0], [0.0, 4.0, 0.0, 0.0]])
    end = np.array([[0.0, 0.0, 5.0, 0.0], [0.0, 4.0, 0.0, 0.0]])
    best = squad.postprocess([example], features, start, end, top_k=3)[0]
    assert [(b["answer"], b["score"]) for b in best] == [("cd", 10.0), ("ab cd", 5.0), ("cd ef", 4.0)]  # not cd 8.0


def test_pipelines_name_the_missing_head(tmp_path, masked_lm):
    base, tokenizer = build(tmp_path, "Model")
    _, mlm, _ = masked_lm
    with pytest.raises(ValueError, match=r"fill-mask needs a masked-language-model head, and BertModel has none: "
                                         r"load BertForMaskedLM"):
        pipelines.fill_mask(base, tokenizer, "the [MASK].")
    cases = [(pipelines.text_classification, (TEXTS,), "text-classification", "BertForSequenceClassification"),
             (pipelines.token_classification, (TEXTS[0],), "token-classification", "BertForTokenClassification"),
             (pipelines.question_answering, ("who", "john"), "question-answering", "BertForQuestionAnswering")]
    for pipeline, args, name, instead in cases:
        with pytest.raises(ValueError, match=f"{name} needs .* BertForMaskedLM has none: load {instead}"):
            pipeline(mlm, tokenizer, *args)


def test_feature_extraction_matches_transformers(tmp_path):
    import transformers

    model, tokenizer = build(tmp_path, "Model")
    reference = transformers.pipeline("feature-extraction", model=str(tmp_path))
    theirs = reference(TEXTS)
    ours = pipelines.feature_extraction(model, tokenizer, TEXTS)
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        assert np.shape(a) == np.shape(b) and np.shape(a)[0] == 1
        np.testing.assert_allclose(a, b, atol=1e-5)
    one = pipelines.feature_extraction(model, tokenizer, TEXTS[0], return_tensors=True)
    np.testing.assert_allclose(one, reference(TEXTS[0], return_tensors=True).numpy(), atol=1e-5)
    assert one.dtype == np.float32 and one.shape[:2] == (1, len(tokenizer.encode(TEXTS[0]).ids))
