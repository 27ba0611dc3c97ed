"""The pipeline subcommands: a model without the pipeline's head is one error line naming the class to use (no
traceback); text-classification prints the config's label names and raw regression scores; feature-extraction
and sentence-embedding print JSON lines."""

import json

import numpy as np
import pytest

from minibert.cli import run
from minibert.tasks import embeddings
from tests.tasks.test_embeddings import SENTENCES, save_sentence_transformer
from tests.tasks.test_pipelines import TEXTS, build


def error_line(capsys, argv) -> str:
    capsys.readouterr()                                  # (what building the checkpoints printed)
    assert run(argv) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1
    return captured.err


def test_a_missing_head_is_one_error_line(tmp_path, capsys):
    build(tmp_path / "base", "Model")
    build(tmp_path / "mlm", "ForMaskedLM")
    err = error_line(capsys, ["fill-mask", "--model", str(tmp_path / "base"), "the [MASK] sat."])
    assert err.startswith("minibert: error: fill-mask needs a masked-language-model head, and BertModel has none: "
                          "load BertForMaskedLM")
    err = error_line(capsys, ["text-classification", "--model", str(tmp_path / "mlm"), TEXTS[0]])
    assert "text-classification needs a sequence-classification head, and BertForMaskedLM has none" in err
    for argv in (["token-classification", TEXTS[0]], ["question-answering", "--context", "john smith", "who"]):
        assert "BertForMaskedLM has none" in error_line(capsys, [argv[0], "--model", str(tmp_path / "mlm"), *argv[1:]])


def test_text_classification_prints_label_names_and_raw_regression_scores(tmp_path, capsys):
    model, tokenizer = build(tmp_path / "named", "ForSequenceClassification", id2label={0: "NEGATIVE", 1: "POSITIVE"})
    capsys.readouterr()
    assert run(["text-classification", "--model", str(tmp_path / "named"), "--top-k", "2", *TEXTS[:2]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == TEXTS[0] and {w for w in lines[1].split() if w.isalpha()} == {"NEGATIVE", "POSITIVE"}
    model, tokenizer = build(tmp_path / "regression", "ForSequenceClassification", num_labels=1,
                             problem_type="regression")
    capsys.readouterr()
    assert run(["text-classification", "--model", str(tmp_path / "regression"), TEXTS[0]]) == 0
    score = float(capsys.readouterr().out.split()[-1])
    logit = float(model(**tokenizer([TEXTS[0]], padding=True)).logits[0, 0])
    assert score == pytest.approx(logit, abs=1e-3)


def test_feature_extraction_and_sentence_embedding_print_json_lines(tmp_path, capsys):
    model, tokenizer = build(tmp_path / "base", "Model")
    capsys.readouterr()
    assert run(["feature-extraction", "--model", str(tmp_path / "base"), *TEXTS[:2]]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in records] == TEXTS[:2]
    assert np.shape(records[0]["features"]) == (1, len(tokenizer.encode(TEXTS[0]).ids), 32)
    path = save_sentence_transformer(tmp_path, "mean", normalize=True)
    capsys.readouterr()
    assert run(["sentence-embedding", "--model", str(path), *SENTENCES[:3]]) == 0
    vectors = [json.loads(line)["embedding"] for line in capsys.readouterr().out.splitlines()]
    np.testing.assert_allclose(vectors, embeddings.encode(path, SENTENCES[:3]), atol=1e-6)
    assert run(["sentence-embedding", "--model", str(path), "--output", str(tmp_path / "v.npy"), *SENTENCES]) == 0
    assert np.load(tmp_path / "v.npy").shape == (len(SENTENCES), 24)
