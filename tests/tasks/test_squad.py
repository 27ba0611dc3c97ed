"""SQuAD: windows over long contexts, labels, the answer that is not where it says, and post-processing
that turns the gold start/end positions back into the gold answers on the real dev set (EM = F1 = 100)."""

from pathlib import Path

import numpy as np
import pytest

from minibert.tasks import metrics, squad
from minibert.tokenization.tokenizer import WordPieceTokenizer

DEV = Path(__file__).parents[3] / "shared" / "data" / "squad_v1.1" / "dev-v1.1.json.zip"
WORDS = "who what sat on the mat cat dog a b c d e f g h".split()


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer({t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])})


def gold_logits(features: squad.Features) -> tuple[np.ndarray, np.ndarray]:
    """Logits that point at the gold start and end of every window that holds the answer, 0 elsewhere."""
    start, end = (np.zeros(features.arrays["input_ids"].shape, np.float32) for _ in range(2))
    rows = np.flatnonzero(features.arrays["start_positions"] > 0)
    start[rows, features.arrays["start_positions"][rows]] = 10.0
    end[rows, features.arrays["end_positions"][rows]] = 10.0
    return start, end


def test_windows_step_by_doc_stride_and_label_the_ones_holding_the_answer(tokenizer):
    context = "a b c d e f g h the cat sat on the mat"   # 14 tokens
    example = squad.QAExample("q", "who sat", context, ["the cat"], [context.index("the cat")])
    features = squad.prepare_features(tokenizer, [example], max_length=12, doc_stride=4)
    # 12 = [CLS] who sat [SEP] + 7 context tokens + [SEP]; windows start at tokens 0, 4, 8 (the last one short)
    assert features.example_index.tolist() == [0, 0, 0]
    ids = features.arrays["input_ids"]
    assert ids[1].tolist() == tokenizer.encode("who sat", "e f g h the cat sat").ids
    assert features.arrays["token_type_ids"][1].tolist() == [0] * 4 + [1] * 8
    # "the cat" is context tokens 8-9: outside window 0 (tokens 0-6), inside windows 1 (4-10) and 2 (8-13)
    assert features.arrays["start_positions"].tolist() == [0, 4 + 8 - 4, 4 + 8 - 8]
    assert features.arrays["end_positions"].tolist() == [0, 4 + 9 - 4, 4 + 9 - 8]
    assert features.arrays["attention_mask"][2].tolist() == [1] * 11 + [0]
    assert features.offsets[2][:4] == [None] * 4 and features.offsets[2][-1] is None
    assert features.offsets[2][5] == (context.index("cat"), context.index("cat") + 3)
    assert features.answered.all() and features.skipped == []
    start, end = gold_logits(features)
    best = squad.postprocess([example], features, start, end, top_k=2)[0]
    assert best[0] == {"score": 20.0, "start": 16, "end": 23, "answer": "the cat"}
    assert squad.predictions([example], features, start, end)["q"] == "the cat"
    assert squad.predictions([example], features, start, end, max_answer_length=1)["q"] in ("the", "cat")


def test_an_answer_not_in_its_context_is_counted_and_reported(tokenizer):
    good = squad.QAExample("good", "who", "the cat sat", ["cat"], [4])
    misplaced = squad.QAExample("moved", "who", "the cat sat", ["cat"], [0])
    absent = squad.QAExample("absent", "who", "the cat sat", ["dog"], [0])
    features = squad.prepare_features(tokenizer, [good, misplaced, absent], max_length=16)
    assert features.answered.tolist() == [True, False, False]
    assert len(features.skipped) == 2 and features.skipped[0].startswith("moved: no answer of ['cat']")
    assert features.arrays["start_positions"].tolist() == [4, 0, 0]


def test_a_later_answer_that_matches_the_pieces_is_preferred(tokenizer):
    # "ca" ends inside the piece "cat"; the second gold answer covers whole pieces
    example = squad.QAExample("q", "who", "the cat sat", ["ca", "the cat"], [4, 0])
    features = squad.prepare_features(tokenizer, [example], max_length=16)
    assert (features.arrays["start_positions"][0], features.arrays["end_positions"][0]) == (3, 4)


@pytest.mark.slow
def test_gold_positions_give_exact_match_100_on_the_dev_set():
    """The whole SQuAD v1.1 dev set (10,570 questions): windows of 384 with a stride of 128, gold labels as
    logits, post-processing, the official metric. max_answer_length is lifted (some gold answers are long)."""
    examples = squad.read_squad(DEV)
    assert len(examples) == 10570
    tokenizer = WordPieceTokenizer.train(iter(sorted({e.context for e in examples})), vocab_size=2000)
    features = squad.prepare_features(tokenizer, examples, max_length=384, doc_stride=128)
    assert features.skipped == [] and len(features.example_index) > len(examples)  # long contexts: several windows
    start, end = gold_logits(features)
    answers = squad.predictions(examples, features, start, end, max_answer_length=384)
    scores = metrics.squad_metrics(answers, {e.id: e.answers for e in examples})
    assert scores == {"exact_match": 100.0, "f1": 100.0}
