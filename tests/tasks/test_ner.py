"""CoNLL NER: WNUT-17 as shipped, first-piece label alignment, and errors naming the file and line."""

from pathlib import Path

import numpy as np
import pytest

from minibert.losses import IGNORE_INDEX
from minibert.tasks import ner
from minibert.tokenization.tokenizer import WordPieceTokenizer

WNUT = Path(__file__).parents[3] / "shared" / "data" / "wnut17"


@pytest.fixture(scope="module")
def tokenizer():
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "empire", "state", "build", "##ing", "is", "tall", "."]
    return WordPieceTokenizer({t: i for i, t in enumerate(pieces)})


def test_reads_wnut17():
    train, dev = ner.read_conll(WNUT / "wnut17train.conll"), ner.read_conll(WNUT / "emerging.dev.conll")
    assert len(train) == 3394 and len(dev) == 1009
    assert train[0].words[14:17] == ["Empire", "State", "Building"]
    assert train[0].tags[14:17] == ["B-location", "I-location", "I-location"]
    labels = ner.label_names(train)
    assert labels[0] == "O" and len(labels) == 13 and labels[1:3] == ["B-corporation", "I-corporation"]


def test_first_piece_carries_the_label(tokenizer, tmp_path):
    (tmp_path / "a.conll").write_text("Empire\tB-loc\nState\tI-loc\nBuilding\tI-loc\nis\tO\ntall\tO\n\u200b\tO\n"
                                      "\n.\tO\n", encoding="utf-8")
    sentences = ner.read_conll(tmp_path / "a.conll")
    assert [len(s.words) for s in sentences] == [6, 1]
    label2id = {t: i for i, t in enumerate(ner.label_names(sentences))}
    assert label2id == {"O": 0, "B-loc": 1, "I-loc": 2}
    encoded = ner.encode(tokenizer, sentences, label2id, max_length=16)
    ids, labels = encoded.arrays["input_ids"][0], encoded.arrays["labels"][0]
    #           [CLS] empire state build ##ing is  tall [SEP]
    assert ids[:8].tolist() == [2, 5, 6, 7, 8, 9, 10, 3]
    assert labels[:8].tolist() == [IGNORE_INDEX, 1, 2, 2, IGNORE_INDEX, 0, 0, IGNORE_INDEX]
    assert encoded.first_pieces[0] == [1, 2, 3, 5, 6, None]     # the zero-width space has no piece
    assert encoded.unseen_words == 1
    predicted = np.zeros_like(encoded.arrays["input_ids"])
    predicted[0, [1, 2, 3]] = [1, 2, 2]
    assert ner.word_tags(predicted, encoded.first_pieces, {0: "O", 1: "B-loc", 2: "I-loc"})[0] == \
        ["B-loc", "I-loc", "I-loc", "O", "O", "O"]
    short = ner.encode(tokenizer, sentences, label2id, max_length=5)  # room for 3 pieces: "building" does not fit
    assert short.first_pieces[0] == [1, 2, None, None, None, None] and short.unseen_words == 4


@pytest.mark.parametrize("content,line", [("Empire\tB-loc\nState\n", 2), ("a\tO\n\nb\tX-loc\n", 3),
                                          ("a\tO\n\tO\n", 2)])
def test_a_malformed_line_names_file_and_line(tmp_path, content, line):
    (tmp_path / "bad.conll").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=rf"bad.conll, line {line}: expected 'word<TAB>tag'"):
        ner.read_conll(tmp_path / "bad.conll")


def test_an_unseen_tag_names_file_and_line(tokenizer, tmp_path):
    (tmp_path / "dev.conll").write_text("is\tO\ntall\tB-product\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"dev.conll, line 2: tag 'B-product' is not one of the model's classes"):
        ner.encode(tokenizer, ner.read_conll(tmp_path / "dev.conll"), {"O": 0, "B-loc": 1, "I-loc": 2}, 16)
