"""Host calls (models/host.py): bucketed lengths give the unpadded results at the real positions in every family
that allows bucketing, the families that see right padding are not bucketed, one compile serves a bucket, and
the cached split follows weight updates and train/eval."""

import jax
import numpy as np
import pytest
from flax import nnx

import minibert.models.finetuning as heads
from minibert.config import BertConfig
from minibert.models import host
from minibert.models.bert import BertForMaskedLM, BertForPreTraining, BertModel
from minibert.models.convbert import ConvBertConfig, ConvBertForMaskedLM
from minibert.models.electra import ElectraConfig, ElectraForPreTraining
from minibert.models.mobilebert import MobileBertConfig, MobileBertForPreTraining
from minibert.models.modernbert import ModernBertConfig, ModernBertForMaskedLM
from minibert.models.mosaicbert import MosaicBertConfig, MosaicBertForMaskedLM
from minibert.models.roberta import RobertaConfig, RobertaForMaskedLM

VOCAB = 97
SMALL = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             max_position_embeddings=64)
FAMILIES = {
    "bert": lambda: BertForPreTraining(BertConfig(**SMALL)),
    "electra": lambda: ElectraForPreTraining(ElectraConfig(**SMALL, embedding_size=16)),
    "mosaicbert": lambda: MosaicBertForMaskedLM(MosaicBertConfig(
        **{k: v for k, v in SMALL.items() if k != "max_position_embeddings"})),
    "roberta": lambda: RobertaForMaskedLM(RobertaConfig(**SMALL)),
    "modernbert": lambda: ModernBertForMaskedLM(ModernBertConfig(**SMALL, local_attention=8, pad_token_id=0)),
    "bert-qa": lambda: heads.BertForQuestionAnswering(BertConfig(**SMALL)),
    "bert-tagger": lambda: heads.BertForTokenClassification(BertConfig.from_dict({**SMALL, "num_labels": 5})),
    "bert-classifier": lambda: heads.BertForSequenceClassification(BertConfig.from_dict({**SMALL, "num_labels": 32})),
    "convbert": lambda: ConvBertForMaskedLM(ConvBertConfig(**SMALL, embedding_size=16, conv_kernel_size=3)),
    "mobilebert": lambda: MobileBertForPreTraining(MobileBertConfig(
        **SMALL, embedding_size=16, intra_bottleneck_size=16, num_feedforward_networks=2)),
}


def inputs(batch=2, seq=11, types=True, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, (batch, seq)).astype(np.int32)
    mask = np.ones((batch, seq), np.int32)
    mask[1, seq - 3:] = 0                                    # a padded row too
    ids[1, seq - 3:] = 0
    return dict(input_ids=ids, attention_mask=mask,
                token_type_ids=(np.arange(seq) >= seq // 2).astype(np.int32)[None].repeat(batch, 0) * int(types))



@pytest.mark.parametrize("family", FAMILIES)
def test_bucketing_leaves_real_positions_unchanged(family):
    model = FAMILIES[family]()
    model.eval()
    batch = inputs(types=family != "modernbert")
    flags = dict(output_hidden_states=True, output_attentions=family != "mosaicbert")
    bucketed = model(**batch, **flags)
    model.pad_to_multiple_of = None
    plain = model(**batch, **flags)
    if family in ("convbert", "mobilebert"):
        assert host.padded_length(model, 11) == 11 and model.config.model_type in host.PADDING_VISIBLE
    else:
        assert host.padded_length(FAMILIES[family](), 11) == 32
    ours, theirs = jax.tree.leaves(bucketed), jax.tree.leaves(plain)
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6, rtol=0)


@pytest.mark.parametrize("family", ["convbert", "mobilebert"])
def test_families_that_see_right_padding_are_not_bucketed(family):
    """Padding these two by hand changes the last real positions: that is why host.PADDING_VISIBLE holds them."""
    model = FAMILIES[family]()
    model.eval()
    batch = inputs(types=False)
    batch["attention_mask"][:] = 1
    plain = np.asarray(model(**batch).logits)
    padded = {k: np.pad(v, [(0, 0), (0, 5)]) for k, v in batch.items()}
    by_hand = np.asarray(model(**padded).logits)[:, :11]
    assert np.abs(by_hand - plain).max() > 1e-4


def test_one_compile_per_bucket(monkeypatch):
    model = BertModel(BertConfig(**SMALL))
    model.eval()
    traces = []
    forward = BertModel.forward
    monkeypatch.setattr(BertModel, "forward", lambda self, *a, **k: traces.append(a[0].shape) or forward(self, *a, **k))
    for length in (3, 17, 32, 5):
        assert model(np.ones((1, length), np.int32)).last_hidden_state.shape == (1, length, 32)
    assert traces == [(1, 32), (1, 31)]                  # the compile, then the shape-only trace that finds seq axes
    model(np.ones((1, 40), np.int32))                    # the next bucket: 64 (= max_position_embeddings)
    assert traces[2] == (1, 64)
    model.pad_to_multiple_of = 8
    assert host.padded_length(model, 9) == 16 and host.bucket_length(60, 8, limit=62) == 62
    assert host.bucket_length(7, None) == 7


def test_the_cached_split_sees_weight_updates_and_train_mode():
    model = BertForMaskedLM(BertConfig(**SMALL))
    model.eval()
    ids = inputs()["input_ids"]
    before = np.asarray(model(ids).logits)
    model.cls.predictions.bias[...] = model.cls.predictions.bias[...] + 1.0
    np.testing.assert_allclose(np.asarray(model(ids).logits), before + 1.0, atol=1e-5)
    nnx.update(model, jax.tree.map(lambda a: a * 0, nnx.state(model, nnx.Param)))
    assert np.abs(np.asarray(model(ids).logits)).max() == 0
    model = BertForMaskedLM(BertConfig(**SMALL))       # train mode: dropout, a new mask each call
    first, second = np.asarray(model(ids).logits), np.asarray(model(ids).logits)
    assert not np.allclose(first, second)
    model.eval()
    np.testing.assert_array_equal(np.asarray(model(ids).logits), np.asarray(model(ids).logits))
    model.train()
    assert not np.allclose(np.asarray(model(ids).logits), first)   # the stream moved on: not the first mask again


def test_a_replaced_submodule_or_variable_is_seen():
    """Assigning a new head (as a fine-tuning user does) or a new Variable object splits the model again."""
    from minibert.nn.linear import Linear

    model = heads.BertForSequenceClassification(BertConfig.from_dict({**SMALL, "num_labels": 3}))
    model.eval()
    ids = inputs()["input_ids"]
    assert np.asarray(model(ids).logits).shape == (2, 3)
    model.classifier = Linear(SMALL["hidden_size"], 5, rngs=nnx.Rngs(1))
    assert np.asarray(model(ids).logits).shape == (2, 5)
    model.classifier.bias = nnx.Param(model.classifier.bias[...] + 7.0)
    pooled = np.asarray(model(ids).pooler_output)
    expected = pooled @ np.asarray(model.classifier.weight[...]).T + np.asarray(model.classifier.bias[...])
    np.testing.assert_allclose(np.asarray(model(ids).logits), expected, atol=1e-5)


def test_host_arrays_inside_an_outer_transformation_are_traced_not_run():
    """Host arrays captured by a function under nnx.jit / nnx.grad reach the model as constants: it must trace
    (as before), not run its own compiled call and read the outputs back to the host."""
    model = BertForMaskedLM(BertConfig(**SMALL))
    model.eval()
    ids = inputs()["input_ids"]
    expected = np.asarray(model(ids).logits)
    np.testing.assert_allclose(np.asarray(nnx.jit(lambda m: m(ids).logits)(model)), expected, atol=1e-5)
    grads = nnx.grad(lambda m: m(ids).logits.sum())(model)
    assert np.abs(np.asarray(grads.cls.predictions.bias[...])).sum() > 0


def test_a_model_no_longer_used_is_freed():
    import gc
    import weakref

    model = BertModel(BertConfig(**SMALL))
    model.eval()
    model(np.ones((1, 5), np.int32))
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
