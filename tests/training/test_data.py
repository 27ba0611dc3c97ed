"""Examples: NSP pairs in the stated proportions and layout, packing, batches as a function of (seed, step)."""

import numpy as np
import pytest

from minibert.training.corpus import documents_from_text, read_documents, split_sentences
from minibert.training.data import NSP_IS_NEXT, Batches, nsp_pairs, pack_sequences

CLS, SEP, PAD, MASK = 2, 3, 0, 4


def synthetic_documents(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return [[list(rng.integers(10, 500, rng.integers(5, 30))) for _ in range(rng.integers(2, 12))] for _ in range(n)]


def test_nsp_pairs_follow_the_recipe():
    examples = nsp_pairs(synthetic_documents(), 64, CLS, SEP, PAD, np.random.default_rng(0))
    labels = examples["next_sentence_label"]
    assert 0.45 < (labels == NSP_IS_NEXT).mean() < 0.55
    ids, types, mask = examples["input_ids"], examples["token_type_ids"], examples["attention_mask"]
    assert (ids[:, 0] == CLS).all()
    for row in range(len(ids)):
        length = mask[row].sum()
        seps = np.flatnonzero(ids[row, :length] == SEP)
        assert len(seps) == 2 and seps[1] == length - 1
        assert (types[row, :seps[0] + 1] == 0).all() and (types[row, seps[0] + 1:length] == 1).all()
        assert (ids[row, length:] == PAD).all() and length <= 64
    assert (mask.sum(1) < 40).mean() > 0.05  # short-sequence probability gives some short examples


def test_pack_sequences_keeps_every_token():
    docs = synthetic_documents(20)
    packed = pack_sequences(docs, 32, CLS, SEP, PAD)
    ids = packed["input_ids"]
    assert (ids[:, 0] == CLS).all()
    body = [t for row, m in zip(ids, packed["attention_mask"]) for t in row[1:m.sum() - 1]]
    assert body == [t for d in docs for t in [*sum(d, []), SEP]]


class FakeTokenizer:
    mask_id, cls_id, sep_id, pad_id = MASK, CLS, SEP, PAD
    id_to_token = {i: ("##x" if i % 3 == 0 else "x") for i in range(600)}

    def __len__(self):
        return 600


def test_batches_are_a_pure_function_of_seed_and_step():
    examples = pack_sequences(synthetic_documents(50), 32, CLS, SEP, PAD)
    a = Batches(examples, 8, FakeTokenizer(), seed=3, mask_rate=0.15)
    b = Batches(examples, 8, FakeTokenizer(), seed=3, mask_rate=0.15)
    for step in (0, 5, 1000):
        for key in a(step):
            np.testing.assert_array_equal(a(step)[key], b(step)[key])
    assert not np.array_equal(a(0)["input_ids"], a(1)["input_ids"])
    epoch = np.concatenate([a.rows(s) for s in range(len(examples["input_ids"]) // 8)])
    assert len(set(epoch.tolist())) == len(epoch)  # no example twice within an epoch


def test_corpus_reading(tmp_path):
    assert split_sentences("One thing. Another one! And a third? yes") == ["One thing.", "Another one!", "And a third? yes"]
    assert documents_from_text("a b.\r\nc d.\r\n\r\n = Title = \r\n") == [["a b.", "c d."], ["= Title ="]]
    (tmp_path / "a.txt").write_text("First doc. Two sentences.\n\nSecond doc.\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Third doc.")
    assert len(read_documents([tmp_path])) == 3
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_documents([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no files"):
        read_documents([tmp_path / "empty"])
    (tmp_path / "blank.txt").write_text("\n\n")
    with pytest.raises(ValueError, match="holds no text"):
        read_documents([tmp_path / "blank.txt"])
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_documents([tmp_path / "bad.txt"])


def test_plot_metrics(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from minibert.training.plots import plot_metrics

    (tmp_path / "metrics.jsonl").write_text('{"step": 10, "loss": 5.0}\n{"step": 20, "loss": 4.0, "eval_accuracy": 0.1}\n')
    ax = plot_metrics(tmp_path)
    assert ax.get_lines()[0].get_ydata().tolist() == [5.0, 4.0]
