"""Examples from a prepared corpus: NSP pairs in the stated proportions and layout, packing that keeps every token,
batches as a pure function of (seed, step), each process its own rows."""

import numpy as np
import pytest

from minibert.training.data import NSP_IS_NEXT, Batches, PackedRows, SentencePairs
from minibert.training.shards import PreparedCorpus
from tests.training.conftest import toy_tokenizer, write_prepared

CLS, SEP, PAD, MASK = 2, 3, 0, 4


FakeTokenizer = toy_tokenizer  # ids as above; "##" pieces at ids divisible by 3


def synthetic_documents(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.integers(10, 500, rng.integers(5, 30)).tolist() for _ in range(rng.integers(2, 12))] for _ in range(n)]


@pytest.fixture
def corpus_of(tmp_path):
    def make(documents):
        return PreparedCorpus(write_prepared(tmp_path / f"prepared{len(documents)}", documents))
    return make


def test_the_prepared_corpus_reads_back_every_document(corpus_of):
    documents = synthetic_documents(31)
    corpus = corpus_of(documents)
    assert corpus.documents == 31
    np.testing.assert_array_equal(corpus.lengths(), [sum(map(len, d)) for d in documents])
    for d, document in enumerate(documents):
        assert corpus.tokens(d).tolist() == [t for s in document for t in s]
        assert corpus.sentence_ends(d).tolist() == np.cumsum([len(s) for s in document]).tolist()


def test_sentence_order_pairs_are_consecutive_and_swapped_half_the_time(corpus_of):
    """SOP (ALBERT §3.1): A and B are consecutive text of one document, B after A (label 0) or swapped (label 1);
    one document is enough."""
    documents = synthetic_documents()
    streams = [[t for s in d for t in s] for d in documents]
    pairs = SentencePairs(corpus_of(documents), range(len(documents)), 64, FakeTokenizer(), sentence_order=True)
    examples = [pairs(i, np.random.default_rng(i)) for i in range(len(pairs))]
    assert all("next_sentence_label" not in e for e in examples)
    labels = np.array([e["sentence_order_label"] for e in examples])
    assert 0.4 < labels.mean() < 0.6
    contiguous = 0
    for e in examples:
        ids = e["input_ids"][:e["attention_mask"].sum()]
        seps = np.flatnonzero(ids == SEP)
        a, b = ids[1:seps[0]].tolist(), ids[seps[0] + 1:seps[1]].tolist()
        first, second = (b, a) if e["sentence_order_label"] else (a, b)
        joined = first + second            # in order again: one run of a document's tokens when not truncated
        contiguous += any(_contains(stream, joined) for stream in streams)
    assert contiguous > 0.5 * len(examples)
    SentencePairs(corpus_of(documents[:1]), range(1), 64, FakeTokenizer(), sentence_order=True)


def _contains(stream: list, part: list) -> bool:
    return any(stream[i:i + len(part)] == part for i in range(len(stream) - len(part) + 1))


def test_sentence_pairs_follow_the_recipe(corpus_of):
    documents = synthetic_documents()
    pairs = SentencePairs(corpus_of(documents), range(len(documents)), 64, FakeTokenizer())
    assert len(pairs) == sum(-(-sum(map(len, d)) // 61) for d in documents)      # ⌈tokens / (seq − 3)⌉ chunks
    examples = [pairs(i, np.random.default_rng(i)) for i in range(len(pairs))]
    labels = np.array([e["next_sentence_label"] for e in examples])
    assert 0.4 < (labels == NSP_IS_NEXT).mean() < 0.55
    sentences = {tuple(s) for d in documents for s in d}
    for e in examples:
        ids, types, mask = e["input_ids"], e["token_type_ids"], e["attention_mask"]
        length = mask.sum()
        assert ids[0] == CLS and (ids[length:] == PAD).all() and length <= 64
        seps = np.flatnonzero(ids[:length] == SEP)
        assert len(seps) == 2 and seps[1] == length - 1
        assert (types[:seps[0] + 1] == 0).all() and (types[seps[0] + 1:length] == 1).all()
    short = np.array([e["attention_mask"].sum() < 40 for e in examples])
    assert short.mean() > 0.05                                   # the short-sequence probability
    # an IsNext pair that was not truncated is consecutive sentences of one document
    whole = [e for e in examples if e["next_sentence_label"] == NSP_IS_NEXT and e["attention_mask"].sum() < 50]
    assert whole and any(tuple(e["input_ids"][1:np.flatnonzero(e["input_ids"] == SEP)[0]]) in sentences for e in whole)


def test_packed_rows_keep_every_token(corpus_of):
    documents = synthetic_documents(20)
    rows = PackedRows(corpus_of(documents), range(20), 32, FakeTokenizer())
    examples = [rows(i, None) for i in range(len(rows))]
    assert all(e["input_ids"][0] == CLS for e in examples)
    body = [t for e in examples for t in e["input_ids"][1:e["attention_mask"].sum() - 1]]
    assert body == [t for d in documents for t in [*sum(d, []), SEP]]
    assert all(e["attention_mask"].sum() == 32 for e in examples[:-1])    # no padding but the last row's


def test_a_document_range_is_all_an_example_builder_reads(corpus_of):
    documents = synthetic_documents(20)
    rows = PackedRows(corpus_of(documents), range(15, 20), 32, FakeTokenizer())
    body = [t for i in range(len(rows)) for e in [rows(i, None)] for t in e["input_ids"][1:e["attention_mask"].sum() - 1]]
    assert body == [t for d in documents[15:] for t in [*sum(d, []), SEP]]


def test_batches_are_a_pure_function_of_seed_and_step(corpus_of):
    rows = PackedRows(corpus_of(synthetic_documents(50)), range(50), 32, FakeTokenizer())
    a = Batches(rows, 8, FakeTokenizer(), seed=3, mask_rate=0.15)
    b = Batches(rows, 8, FakeTokenizer(), seed=3, mask_rate=0.15, max_predictions=8)
    for step in (0, 5, 1000):
        again = Batches(rows, 8, FakeTokenizer(), seed=3, mask_rate=0.15)(step)
        for key in again:
            np.testing.assert_array_equal(a(step)[key], again[key])
        assert b(step)["masked_positions"].shape == (8, 8)
    assert not np.array_equal(a(0)["input_ids"], a(1)["input_ids"])
    unmasked = Batches(rows, 8, FakeTokenizer(), seed=3, mask_rate=0.0)
    epoch = [tuple(r) for s in range(len(rows) // 8) for r in unmasked(s)["input_ids"]]
    assert len(set(epoch)) == len(epoch)                        # no example twice within an epoch


def test_every_process_builds_only_its_rows_of_the_global_batch(corpus_of):
    documents = synthetic_documents(60)
    pairs = SentencePairs(corpus_of(documents), range(60), 48, FakeTokenizer())
    whole = Batches(pairs, 8, FakeTokenizer(), seed=1, mask_rate=0.15, max_predictions=8, process_index=0,
                    process_count=1)
    parts = [Batches(pairs, 8, FakeTokenizer(), seed=1, mask_rate=0.15, max_predictions=8, process_index=p,
                     process_count=2) for p in range(2)]
    for step in (0, 3, 77):
        for key, value in whole(step).items():
            assert parts[0](step)[key].shape[0] == 4
            np.testing.assert_array_equal(np.concatenate([part(step)[key] for part in parts]), value)
    with pytest.raises(ValueError, match="not divisible by the 3 processes"):
        Batches(pairs, 8, FakeTokenizer(), seed=1, mask_rate=0.15, process_index=0, process_count=3)


def test_too_few_examples_or_documents(corpus_of):
    corpus = corpus_of(synthetic_documents(3))
    with pytest.raises(ValueError, match="NSP needs at least two documents"):
        SentencePairs(corpus, range(2, 3), 64, FakeTokenizer())
    with pytest.raises(ValueError, match="fewer than one batch"):
        Batches(PackedRows(corpus, range(3), 512, FakeTokenizer()), 64, FakeTokenizer(), seed=0, mask_rate=0.15)


def test_plot_metrics(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from minibert.training.plots import plot_metrics

    (tmp_path / "metrics.jsonl").write_text('{"step": 10, "loss": 5.0}\n{"step": 20, "loss": 4.0, "eval_accuracy": 0.1}\n')
    ax = plot_metrics(tmp_path)
    assert ax.get_lines()[0].get_ydata().tolist() == [5.0, 4.0]


@pytest.mark.parametrize("max_predictions", [None, 16])
def test_whole_word_masking_takes_every_piece_of_a_byte_level_bpe_word(bpe_prepared, max_predictions):
    """Word boundaries come from the tokenizer (`word_starts`: a byte-level BPE word starts at a "Ġ" piece), not from
    WordPiece's "##": every masked word is masked whole, and some words of several pieces are."""
    from minibert.tokenization import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(bpe_prepared / "tokenizer")
    corpus = PreparedCorpus(bpe_prepared)
    rows = PackedRows(corpus, range(corpus.documents), 64, tokenizer)
    batch = Batches(rows, 16, tokenizer, seed=0, mask_rate=0.15, whole_word=True, max_predictions=max_predictions)(0)
    original = np.stack([rows(int(i), None)["input_ids"] for i in batch_indices(rows, 16, seed=0)])
    labels = batch["labels"]
    if max_predictions is not None:                          # the sparse head's slots, back to positions
        dense = np.full(original.shape, -100)
        np.put_along_axis(dense, batch["masked_positions"], labels, axis=1)
        dense[:, 0] = -100                                   # (empty slots point at position 0, never masked)
        labels = dense
    masked = labels != -100
    starts = tokenizer.word_starts(original)
    word = np.cumsum(starts, axis=1)
    several = 0
    for r in range(len(original)):
        for w in np.unique(word[r][masked[r]]):
            pieces = word[r] == w
            assert masked[r][pieces].all(), tokenizer.convert_ids_to_tokens(original[r][pieces].tolist())
            several += pieces.sum() > 1
    assert several > 0
    assert (labels[masked] == original[masked]).all()
    tokens = tokenizer.convert_ids_to_tokens(original[0].tolist())
    special = ("<s>", "</s>", "<pad>")
    assert all(s == (t.startswith("Ġ") or t in special or i == 0 or tokens[i - 1] in special)
               for i, (t, s) in enumerate(zip(tokens, starts[0])))


def batch_indices(rows, batch_size, seed):
    """The example indices of step 0's batch (the first of the seeded permutation), as `Batches` draws them."""
    import grain

    return [grain.MapDataset.range(len(rows)).shuffle(seed=seed)[i] for i in range(batch_size)]
