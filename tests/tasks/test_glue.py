"""GLUE-style TSV: SST-2 as shipped, sentence pairs, and the errors for malformed rows and unseen labels."""

from pathlib import Path

import numpy as np
import pytest

from minibert.tasks import glue
from minibert.tokenization.tokenizer import WordPieceTokenizer

SST2 = Path(__file__).parents[3] / "shared" / "data" / "SST-2"


@pytest.fixture(scope="module")
def tokenizer():
    words = "it 's a charming and often affecting journey the cat sat on mat".split()
    return WordPieceTokenizer({t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])})


def test_reads_the_sst2_dev_set():
    examples = glue.read_tsv(SST2 / "dev.tsv")
    assert len(examples) == 872
    assert examples[0].text == "it 's a charming and often affecting journey ." and examples[0].label == "1"
    assert examples[0].pair is None and examples[0].where.endswith("dev.tsv, line 2")
    assert glue.label_names(examples) == ["0", "1"]


def test_pairs_encode_with_token_types(tokenizer, tmp_path):
    (tmp_path / "rte.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\tthe cat\tsat on the mat\tentailment\n"
                                      "1\tthe mat\tthe cat\tnot_entailment\n", encoding="utf-8")
    examples = glue.read_tsv(tmp_path / "rte.tsv")
    assert (examples[0].text, examples[0].pair) == ("the cat", "sat on the mat")
    labels = glue.label_names(examples)
    assert labels == ["entailment", "not_entailment"]
    batch = glue.encode(tokenizer, examples, 16, {n: i for i, n in enumerate(labels)})
    assert batch["input_ids"].shape == (2, 9)                    # [CLS] the cat [SEP] sat on the mat [SEP]
    assert batch["token_type_ids"][0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert batch["attention_mask"][1].tolist() == [1] * 7 + [0, 0]
    np.testing.assert_array_equal(batch["labels"], [0, 1])


def test_an_unseen_label_names_its_file_and_line(tokenizer, tmp_path):
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nthe cat\t1\nthe mat\t2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dev.tsv, line 3: label '2' is not one of the model's classes \['0', '1'\]"):
        glue.encode(tokenizer, glue.read_tsv(tmp_path / "dev.tsv"), 16, {"0": 0, "1": 1})


@pytest.mark.parametrize("content,error", [
    ("sentence\tlabel\nthe cat\t1\nthe mat\n", r"line 3: 1 tab-separated fields, the header has 2"),
    ("sentence\tlabel\nthe cat\t\n", r"line 2: empty label"),
    ("words\tlabel\nthe cat\t1\n", r"line 1: no text column"),
])
def test_malformed_files_name_the_line(tmp_path, content, error):
    (tmp_path / "bad.tsv").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=error):
        glue.read_tsv(tmp_path / "bad.tsv")


def test_continuous_or_missing_labels_are_errors(tmp_path):
    (tmp_path / "sts.tsv").write_text("sentence1\tsentence2\tlabel\na\tb\t3.8\nc\td\t1.0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="labels look continuous"):
        glue.label_names(glue.read_tsv(tmp_path / "sts.tsv"))
    (tmp_path / "test.tsv").write_text("index\tsentence\n0\tthe cat\n", encoding="utf-8")
    unlabelled = glue.read_tsv(tmp_path / "test.tsv")
    assert unlabelled[0].label is None
    with pytest.raises(ValueError, match=r"test.tsv, line 2: no label"):
        glue.label_ids(unlabelled, {"0": 0})
