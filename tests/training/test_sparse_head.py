"""The sparse MLM head (the head on the masked positions only) gives the dense head's loss and gradients in every
family; `Batches(max_predictions=...)` lays the masked positions out and caps them; the Trainer's metrics agree;
`minibert pretrain` pads the vocabulary to a multiple of 64 and picks the attention implementation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from minibert.config import BertConfig
from minibert.losses import IGNORE_INDEX
from minibert.models.bert import BertForMaskedLM, BertForPreTraining
from minibert.models.convbert import ConvBertConfig, ConvBertForMaskedLM
from minibert.models.mobilebert import MobileBertConfig, MobileBertForPreTraining
from minibert.models.modernbert import ModernBertConfig, ModernBertForMaskedLM
from minibert.models.mosaicbert import MosaicBertConfig, MosaicBertForMaskedLM
from minibert.nn.packing import set_token_capacity
from minibert.training.data import Batches, FixedRows, PackedRows, default_max_predictions, sparse_predictions
from minibert.training.shards import PreparedCorpus
from tests.training.conftest import toy_tokenizer, write_prepared
from minibert.training.loop import TrainConfig, Trainer
from tests.conftest import padded_batch

VOCAB, BATCH, SEQ, SLOTS = 97, 4, 24, 8


def _modernbert_unpadded():
    model = ModernBertForMaskedLM(ModernBertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                                   num_attention_heads=2, intermediate_size=48, local_attention=8,
                                                   pad_token_id=0, max_position_embeddings=64))
    model.model.unpad = True
    return model


def _mosaicbert_capacity():
    model = MosaicBertForMaskedLM(MosaicBertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1,
                                                   num_attention_heads=4, intermediate_size=40))
    set_token_capacity(model, BATCH * SEQ - 10)
    return model


FAMILIES = {   # BertForMaskedLM shares BertForPreTraining's forward; ModernBERT's padded layout is the identity
    "bert-pretraining": lambda: BertForPreTraining(BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1,
                                                              num_attention_heads=2, intermediate_size=64,
                                                              max_position_embeddings=64)),
    "mobilebert": lambda: MobileBertForPreTraining(MobileBertConfig(
        vocab_size=VOCAB, hidden_size=32, embedding_size=16, intra_bottleneck_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, num_feedforward_networks=2, max_position_embeddings=64)),
    "convbert": lambda: ConvBertForMaskedLM(ConvBertConfig(vocab_size=VOCAB, hidden_size=32, embedding_size=16,
                                                           num_hidden_layers=1, num_attention_heads=4,
                                                           intermediate_size=64, conv_kernel_size=3,
                                                           max_position_embeddings=64)),
    "mosaicbert": _mosaicbert_capacity,
    "modernbert-unpadded": _modernbert_unpadded,
}


def masked_batch(family: str) -> dict:
    """A padded batch with ~25% of the real tokens masked (dense labels), plus its sparse layout."""
    batch = padded_batch(VOCAB, BATCH, SEQ, type_vocab_size=0 if family.startswith("modernbert") else 2, seed=1)
    rng = np.random.default_rng(2)
    labels = np.where((rng.random((BATCH, SEQ)) < 0.25) & (batch["attention_mask"] > 0), batch["input_ids"],
                      IGNORE_INDEX)
    labels[:, 0] = IGNORE_INDEX
    labels[0] = IGNORE_INDEX
    labels[0, 1:SLOTS + 1] = batch["input_ids"][0, 1:SLOTS + 1]        # one row with every slot used
    ids, sparse_labels, positions = sparse_predictions(batch["input_ids"], batch["input_ids"], labels, SLOTS,
                                                       np.random.default_rng(3))
    assert (sparse_labels != IGNORE_INDEX).sum() == (labels != IGNORE_INDEX).sum()  # nothing capped here
    if family in ("bert-pretraining", "mobilebert"):
        batch["next_sentence_label"] = np.array([0, 1, 1, 0])
    return {"dense": {**batch, "labels": labels},
            "sparse": {**batch, "labels": sparse_labels, "masked_positions": positions}}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_sparse_head_loss_and_gradients_equal_the_dense_heads(family):
    model = FAMILIES[family]()
    model.eval()
    batches = masked_batch(family)

    def loss_and_logits(m, batch):
        out = m(**{k: jnp.asarray(v) for k, v in batch.items()})
        return out.loss, out.logits

    grad = nnx.jit(nnx.value_and_grad(loss_and_logits, has_aux=True))
    (dense_loss, dense_logits), dense_grads = grad(model, batches["dense"])
    (sparse_loss, sparse_logits), sparse_grads = grad(model, batches["sparse"])
    assert sparse_logits.shape == (BATCH, SLOTS, VOCAB)
    np.testing.assert_allclose(float(sparse_loss), float(dense_loss), rtol=1e-6, atol=1e-6)
    positions, labels = batches["sparse"]["masked_positions"], batches["sparse"]["labels"]
    gathered = np.take_along_axis(np.asarray(dense_logits), positions[..., None], axis=1)
    filled = labels != IGNORE_INDEX
    assert np.abs(np.asarray(sparse_logits)[filled] - gathered[filled]).max() <= 1e-5
    # the same sums in another order (the decoder's gradient gathers over n positions, not seq): float32 rounding
    jax.tree.map(lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6),
                 nnx.to_pure_dict(dense_grads), nnx.to_pure_dict(sparse_grads))
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(nnx.to_pure_dict(sparse_grads))) > 1e-3


def test_sparse_head_rejects_labels_of_another_shape():
    model = FAMILIES["bert-pretraining"]()
    batch = masked_batch("bert-pretraining")
    with pytest.raises(ValueError, match="must have the same shape"):
        model(**{**batch["sparse"], "labels": batch["dense"]["labels"]})


# ---------------------------------------------------------------- Batches(max_predictions=...)

CLS, SEP, PAD, MASK = 2, 3, 0, 4


FakeTokenizer = toy_tokenizer  # ids as above; "##" pieces at ids divisible by 3
TOKENS = toy_tokenizer().id_to_token


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    rng = np.random.default_rng(0)
    documents = [[rng.integers(10, 500, rng.integers(5, 30)).tolist() for _ in range(rng.integers(2, 12))]
                 for _ in range(60)]
    packed = PackedRows(PreparedCorpus(write_prepared(tmp_path_factory.mktemp("prepared"), documents)), range(60), 32,
                        FakeTokenizer())
    rows = [packed(i, None) for i in range(len(packed))]
    arrays = {k: np.stack([row[k] for row in rows]) for k in rows[0]}
    arrays["attention_mask"][::3, 20:] = 0   # some padding too
    arrays["input_ids"][::3, 20:] = PAD
    return FixedRows(arrays)


@pytest.mark.parametrize("whole_word", [False, True])
def test_enough_slots_give_the_dense_masking_laid_out_by_position(examples, whole_word):
    dense = Batches(examples, 8, FakeTokenizer(), seed=3, mask_rate=0.15, whole_word=whole_word)
    sparse = Batches(examples, 8, FakeTokenizer(), seed=3, mask_rate=0.15, whole_word=whole_word, max_predictions=32)
    for step in (0, 7):
        d, s = dense(step), sparse(step)
        np.testing.assert_array_equal(s["input_ids"], d["input_ids"])
        filled = s["labels"] != IGNORE_INDEX
        scattered = np.full_like(d["labels"], IGNORE_INDEX)
        scattered[np.nonzero(filled)[0], s["masked_positions"][filled]] = s["labels"][filled]
        np.testing.assert_array_equal(scattered, d["labels"])
        for row in range(8):            # filled slots first, positions increasing; empty slots: position 0
            n = filled[row].sum()
            assert filled[row, :n].all() and not filled[row, n:].any()
            assert (np.diff(s["masked_positions"][row, :n]) > 0).all() and (s["masked_positions"][row, n:] == 0).all()


@pytest.mark.parametrize("whole_word", [False, True])
def test_rows_with_more_masked_tokens_than_slots_keep_whole_words_and_unmask_the_rest(examples, whole_word):
    slots = 3
    dense = Batches(examples, 8, FakeTokenizer(), seed=3, mask_rate=0.3, whole_word=whole_word)
    sparse = Batches(examples, 8, FakeTokenizer(), seed=3, mask_rate=0.3, whole_word=whole_word,
                     max_predictions=slots)
    capped = 0
    for step in range(4):
        d, s = dense(step), sparse(step)
        original = Batches(examples, 8, FakeTokenizer(), seed=3, mask_rate=0.0)(step)["input_ids"]   # same rows
        filled = s["labels"] != IGNORE_INDEX
        for row in range(8):
            kept = s["masked_positions"][row, filled[row]]
            chosen = np.flatnonzero(d["labels"][row] != IGNORE_INDEX)
            assert set(kept) <= set(chosen) and len(kept) <= slots
            assert len(kept) >= min(1, len(chosen)) or whole_word
            capped += len(chosen) > slots
            np.testing.assert_array_equal(s["labels"][row, filled[row]], original[row, kept])
            dropped = np.setdiff1d(chosen, kept)
            np.testing.assert_array_equal(s["input_ids"][row, dropped], original[row, dropped])
            np.testing.assert_array_equal(s["input_ids"][row, kept], d["input_ids"][row, kept])
            if whole_word:              # a kept word is kept whole: its continuation pieces come with it
                pieces = np.array([TOKENS[i].startswith("##") for i in original[row]])
                for position in kept:
                    following = position + 1
                    while following < 32 and pieces[following] and following in chosen:
                        assert following in kept
                        following += 1
    assert capped > 0


def test_max_predictions_out_of_range_is_an_error(examples):
    with pytest.raises(ValueError, match=r"max_predictions must be in \[1, 32\]"):
        Batches(examples, 8, FakeTokenizer(), seed=0, mask_rate=0.15, max_predictions=33)


def test_default_slots_rarely_cap_a_row():
    assert default_max_predictions(128, 0.15) == 32 and default_max_predictions(512, 0.15) == 104
    assert default_max_predictions(16, 0.5) == 16          # never more than the sequence
    rng = np.random.default_rng(0)
    masked = (rng.random((20000, 126)) < 0.15).sum(1)
    assert (masked > default_max_predictions(128, 0.15)).mean() < 0.005


def test_trainer_metrics_are_the_same_with_a_sparse_head(examples, tmp_path):
    """Trainer's evaluation (loss and masked-token accuracy) on the same masked batch, dense and sparse."""
    config = BertConfig(vocab_size=640, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32)
    results = {}
    for name, slots in (("dense", None), ("sparse", 32)):
        batches = Batches(examples, 8, FakeTokenizer(), seed=3, mask_rate=0.3, max_predictions=slots)
        model = BertForMaskedLM(config, rngs=nnx.Rngs(0))
        train = TrainConfig(steps=1, output_dir=str(tmp_path / name))
        results[name] = Trainer(model, train, batches, eval_batch=batches(0)).evaluate()
    for key in ("eval_loss", "eval_accuracy"):
        np.testing.assert_allclose(results["sparse"][key], results["dense"][key], rtol=1e-6)
    assert results["dense"]["eval_accuracy"] >= 0


# ---------------------------------------------------------------- `minibert pretrain`: vocabulary, attention

def test_pretrain_pads_the_vocabulary_uses_the_sparse_head_and_saves_a_loadable_model(corpus_and_vocab, tmp_path):
    import torch
    import transformers

    from minibert.tokenization.tokenizer import WordPieceTokenizer
    from minibert.training.pretrain import PretrainConfig, build

    corpus, vocab = corpus_and_vocab
    tokens = len(WordPieceTokenizer.from_pretrained(vocab))
    train = TrainConfig(steps=2, warmup_steps=1, log_every=1, eval_every=1000, save_every=1000,
                        output_dir=str(tmp_path))
    config = PretrainConfig(family="bert", size="tiny", corpus=[str(corpus)], vocab=str(vocab), seq_len=32,
                            batch_size=8, train=train)
    model, _, batches, _ = build(config)
    assert model.config.vocab_size % 64 == 0 and tokens <= model.config.vocab_size < tokens + 64
    batch = batches(0)
    assert batch["masked_positions"].shape == batch["labels"].shape == (8, default_max_predictions(32, 0.15))
    assert batch["input_ids"].max() < tokens          # the padding rows are never produced
    model.eval()
    model.save_pretrained(tmp_path)
    reference = transformers.AutoModelForPreTraining.from_pretrained(tmp_path).eval()
    assert reference.config.vocab_size == model.config.vocab_size
    ids = batch["input_ids"][:2]
    with torch.no_grad():
        theirs = reference(torch.from_numpy(ids.astype(np.int64))).prediction_logits.numpy()
    ours = np.asarray(model(ids).logits)
    assert np.abs(ours - theirs).max() < 1e-4


@pytest.mark.parametrize("choice, expected", [("auto", "reference"), ("fused", "fused"), ("reference", "reference")])
def test_attention_choice(choice, expected):
    from minibert.training.pretrain import attention_implementation

    assert jax.default_backend() == "cpu"
    assert attention_implementation(choice) == expected


def test_unknown_attention_choice_fails_before_training(corpus_and_vocab, tmp_path):
    from minibert.cli import main

    corpus, vocab = corpus_and_vocab
    with pytest.raises(ValueError, match="unknown attention implementation 'flash'"):
        from minibert.training.pretrain import PretrainConfig, build
        build(PretrainConfig(corpus=[str(corpus)], vocab=str(vocab), attention="flash",
                             train=TrainConfig(output_dir=str(tmp_path))))
    with pytest.raises(SystemExit):
        main(["pretrain", "--attention", "flash"])
