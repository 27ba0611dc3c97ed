"""Flex (models/flex.py): the proof that the ideas compose — BERT, ConvBERT, MobileBERT (bottlenecks and stacked
FFNs), MosaicBERT and ModernBERT, random weights, mapped onto their Flex presets compute the same logits and hidden states (float32, 1e-6) on right-padded
batches; the combinations the modules cannot express are refused with the reason; other combinations build, train
(finite loss) and give the same outputs unpadded as padded, and packed documents as documents alone; checkpoints
round-trip under model_type "flex"."""

import dataclasses
import math

import numpy as np
import pytest
from flax import nnx

import minibert
from minibert.checkpoints.hf import model_state_dict, save_pretrained
from minibert.config import BertConfig
from minibert.models import auto, flex, host
from minibert.models.bert import BertForMaskedLM
from minibert.models.convbert import ConvBertConfig, ConvBertForMaskedLM
from minibert.models.flex import FlexConfig, FlexForMaskedLM, flex_from
from minibert.models.mobilebert import MobileBertConfig, MobileBertForMaskedLM
from minibert.models.modernbert import ModernBertConfig, ModernBertForMaskedLM
from minibert.models.mosaicbert import MosaicBertConfig, MosaicBertForMaskedLM
from tests.conftest import padded_batch

TOLERANCE = 1e-6
# odd sizes: head size 5 (BERT, ConvBERT's 2 + 2 mixed heads), factorised E (ConvBERT), 6 heads (ALiBi's
# non-power-of-two slopes), a window shorter than the rows (ModernBERT)
FAMILIES = {
    "bert": (BertForMaskedLM, BertConfig(vocab_size=37, hidden_size=15, num_hidden_layers=2, num_attention_heads=3,
                                         intermediate_size=22, max_position_embeddings=20, type_vocab_size=3,
                                         layer_norm_eps=1e-7, hidden_act="gelu_new", tie_word_embeddings=False)),
    "convbert": (ConvBertForMaskedLM, ConvBertConfig(vocab_size=39, hidden_size=20, embedding_size=12,
                                                     num_hidden_layers=2, num_attention_heads=4, head_ratio=2,
                                                     conv_kernel_size=3, intermediate_size=22,
                                                     max_position_embeddings=20, type_vocab_size=2)),
    "mobilebert": (MobileBertForMaskedLM, MobileBertConfig(vocab_size=31, hidden_size=20, embedding_size=20,
                                                           trigram_input=False, intra_bottleneck_size=8,
                                                           use_bottleneck_attention=True,
                                                           key_query_shared_bottleneck=False, num_hidden_layers=2,
                                                           num_attention_heads=2, intermediate_size=14,
                                                           num_feedforward_networks=3, normalization_type="layer_norm",
                                                           layer_norm_eps=1e-5, max_position_embeddings=20,
                                                           type_vocab_size=3)),
    "mobilebert-no-bottleneck": (MobileBertForMaskedLM, MobileBertConfig(
        vocab_size=31, hidden_size=12, embedding_size=12, trigram_input=False, use_bottleneck=False,
        num_hidden_layers=2, num_attention_heads=3, intermediate_size=14, num_feedforward_networks=2,
        normalization_type="layer_norm", layer_norm_eps=1e-5, max_position_embeddings=20, hidden_act="gelu")),
    "mosaicbert": (MosaicBertForMaskedLM, MosaicBertConfig(vocab_size=41, hidden_size=24, num_hidden_layers=2,
                                                           num_attention_heads=6, intermediate_size=20,
                                                           type_vocab_size=3)),
    "modernbert": (ModernBertForMaskedLM, ModernBertConfig(vocab_size=43, hidden_size=30, intermediate_size=22,
                                                           num_hidden_layers=4, num_attention_heads=3,
                                                           local_attention=6, pad_token_id=0,
                                                           layer_types=["full_attention", "sliding_attention"] * 2,
                                                           rope_parameters={"full_attention": {"rope_theta": 500.0},
                                                                            "sliding_attention": {"rope_theta": 70.0}},
                                                           mlp_bias=True)),
}
SEQ = 13


def perturb(model, seed=0):
    """Every parameter off its initialisation (biases and norms included), eval mode."""
    rng = np.random.default_rng(seed)
    for param in model_state_dict(model).values():
        param.set_value(rng.normal(0, 0.1, param.shape).astype(np.float32) + (param[...] == 1))
    model.eval()
    return model


def family_model(name):
    model_class, config = FAMILIES[name]
    model = perturb(model_class(config))
    if name == "modernbert":
        model.model.unpad = True
    return model


def batch_for(config, seed=0):
    types = getattr(config, "type_vocab_size", 0)
    return padded_batch(config.vocab_size, 3, SEQ, type_vocab_size=types, seed=seed)


def max_diff(a, b, mask):
    return float(np.abs(np.asarray(a) - np.asarray(b))[mask.astype(bool)].max())


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_reproduced_by_its_flex_preset(name):
    model = family_model(name)
    mapped = flex_from(model)
    batch = batch_for(model.config)
    theirs, ours = model(**batch, output_hidden_states=True), mapped(**batch, output_hidden_states=True)
    mask = batch["attention_mask"]
    assert len(ours.hidden_states) == len(theirs.hidden_states)
    for a, b in zip(ours.hidden_states, theirs.hidden_states):
        assert max_diff(a, b, mask) <= TOLERANCE
    assert max_diff(ours.last_hidden_state, theirs.last_hidden_state, mask) <= TOLERANCE
    assert max_diff(ours.logits, theirs.logits, mask) <= TOLERANCE
    if name in ("mosaicbert", "modernbert"):          # unpadded: zeros at padding, as the family's
        np.testing.assert_array_equal(np.asarray(ours.logits)[mask == 0], 0)


def test_presets_mirror_the_families():
    assert flex.preset("bert") == FlexConfig()
    mosaic, modern = flex.preset("mosaicbert"), flex.preset("modernbert")
    assert (mosaic.positions, mosaic.ffn, mosaic.norm, mosaic.unpad) == ("alibi", "geglu", "post", True)
    assert (modern.positions, modern.attention, modern.global_attn_every_n_layers, modern.ffn, modern.norm,
            modern.bias, modern.type_vocab_size) == ("rope", "local_global", 3, "geglu", "pre", False, 0)
    assert (modern.rope_theta, modern.local_rope_theta) == (160_000.0, 10_000.0)
    assert flex.preset("modernbert", unpad=True).unpad
    convbert = flex.preset("convbert")
    assert (convbert.span_conv_kernel, convbert.head_ratio, convbert.attention_heads, convbert.head_dim) == \
        (9, 2, 6, 64)
    with pytest.raises(ValueError, match="unknown Flex preset"):
        flex.preset("gpt")


def test_what_flex_cannot_reproduce_is_refused():
    with pytest.raises(ValueError, match="eps"):
        flex_from(MosaicBertForMaskedLM(MosaicBertConfig(**{**FAMILIES["mosaicbert"][1].__dict__,
                                                              "layer_norm_eps": 1e-6})))
    modern = FAMILIES["modernbert"][1]
    with pytest.raises(ValueError, match="every n-th layer global"):
        flex_from(ModernBertForMaskedLM(ModernBertConfig(
            **{**modern.__dict__, "layer_types": ["sliding_attention", "full_attention"] * 2})))
    with pytest.raises(ValueError, match="one activation"):
        flex_from(ModernBertForMaskedLM(ModernBertConfig(**{**modern.__dict__, "classifier_activation": "silu"})))
    with pytest.raises(ValueError, match="grouped feed-forward"):
        flex_from(ConvBertForMaskedLM(ConvBertConfig(**{**FAMILIES["convbert"][1].__dict__, "num_groups": 2})))
    mobile = FAMILIES["mobilebert"][1]
    for field, values in [("trigram_input", dict(trigram_input=True)), ("embedding_size", dict(embedding_size=8)),
                          ("use_bottleneck_attention",       # MobileBERT's published attention: values from x
                           dict(use_bottleneck_attention=False, key_query_shared_bottleneck=True)),
                          ("key_query_shared_bottleneck", dict(key_query_shared_bottleneck=True)),
                          ("normalization_type", dict(normalization_type="no_norm")),
                          ("layer_norm_eps", dict(layer_norm_eps=1e-12)),
                          ("tie_word_embeddings", dict(tie_word_embeddings=False))]:
        with pytest.raises(ValueError, match=f"MobileBERT's {field} .* cannot be Flex"):
            flex_from(MobileBertForMaskedLM(MobileBertConfig(**{**mobile.__dict__, **values})))
    with pytest.raises(ValueError, match="MobileBERT's trigram_input True cannot be Flex"):
        flex.preset("mobilebert")              # the published MobileBERT: trigram embeddings, values from x, NoNorm
    with pytest.raises(ValueError, match="flex_from maps"):
        flex_from(FlexForMaskedLM(FlexConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=8)))


SMALL = dict(vocab_size=29, hidden_size=12, num_hidden_layers=3, num_attention_heads=2, intermediate_size=10,
             max_position_embeddings=16, type_vocab_size=2, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


@pytest.mark.parametrize("values, message", [
    (dict(positions="sinusoidal"), "positions 'sinusoidal' is not one of learned, alibi, rope"),
    (dict(attention="sparse"), "attention 'sparse' is not one of"),
    (dict(ffn="swiglu"), "ffn 'swiglu' is not one of"),
    (dict(norm="sandwich"), "norm 'sandwich' is not one of"),
    (dict(norm_type="rms_norm"), "norm_type 'rms_norm' is not one of"),
    (dict(hidden_act="mish"), "hidden_act 'mish'"),
    (dict(num_attention_heads=5), "not a multiple of num_attention_heads"),
    (dict(positions="rope", hidden_size=18, num_attention_heads=6), r"head size \(.*\) must be even, got 3"),
    (dict(norm_type="no_norm", bias=False), "NoNorm"),
    (dict(global_attn_every_n_layers=0), "global_attn_every_n_layers must be positive"),
    (dict(embedding_size=-1), "embedding_size must be ≥ 0"),
    (dict(pad_token_id=29), "pad_token_id 29 is outside the vocabulary"),
    (dict(hidden_dropout_prob=1.0), r"hidden_dropout_prob must be in \[0, 1\)"),
    (dict(span_conv_kernel=4), "span_conv_kernel must be odd"),
    (dict(span_conv_kernel=3, num_attention_heads=4, head_ratio=1), r"multiple of 2 × 4 heads"),
    (dict(span_conv_kernel=3, unpad=True), "span_conv_kernel with unpad is not supported"),
    (dict(span_conv_kernel=3, bias=False), "span_conv_kernel needs bias=true"),
    (dict(span_conv_kernel=3, positions="rope", hidden_size=20, num_attention_heads=4), "must be even, got 5"),
    (dict(intra_bottleneck_size=5), "intra_bottleneck_size 5 is not a multiple of num_attention_heads 2"),
    (dict(intra_bottleneck_size=8, norm="pre"), "intra_bottleneck_size needs norm=post"),
    (dict(num_feedforward_networks=0), "num_feedforward_networks must be positive"),
])
def test_impossible_combinations_are_refused_with_the_reason(values, message):
    config = FlexConfig(**{**SMALL, **values})
    with pytest.raises(ValueError, match=message):
        FlexForMaskedLM(config)


def test_wrong_types_are_refused():
    with pytest.raises(TypeError, match="unpad must be bool"):
        FlexForMaskedLM(FlexConfig(**SMALL, unpad="yes"))


def test_update_from_string():
    config = FlexConfig(**SMALL)
    if not hasattr(config, "update_from_string"):
        pytest.skip("PretrainedConfig.update_from_string is not in this tree yet")
    config.update_from_string("positions=rope,ffn=geglu,norm=pre,bias=false,embedding_size=8,rope_theta=500")
    assert (config.positions, config.ffn, config.norm, config.bias, config.embedding_size, config.rope_theta) == \
        ("rope", "geglu", "pre", False, 8, 500.0)
    FlexForMaskedLM(config)


COMBINATIONS = {
    "pre-ln+rope+geglu": dict(norm="pre", positions="rope", ffn="geglu", attention="local_global", local_attention=4,
                              global_attn_every_n_layers=2),
    "alibi+glu+unpad": dict(positions="alibi", ffn="glu", hidden_act="silu", unpad=True),
    "no-bias": dict(bias=False, norm="pre", type_vocab_size=0),
    "factorised-E": dict(embedding_size=8, norm="pre", positions="rope", tie_word_embeddings=True),
    "no_norm+learned+local": dict(norm_type="no_norm", attention="local_global", local_attention=2, unpad=True),
    "bottleneck+stacked+rope": dict(intra_bottleneck_size=8, num_feedforward_networks=3, positions="rope",
                                    bias=False, unpad=True),
}


def test_mixed_attention_composes_with_rope_pre_ln_and_windows():
    config = FlexConfig(**{**SMALL, "span_conv_kernel": 3, "positions": "rope", "norm": "pre", "ffn": "geglu",
                           "attention": "local_global", "local_attention": 4, "hidden_size": 16,
                           "num_attention_heads": 2, "head_ratio": 1})
    model = perturb(FlexForMaskedLM(config), seed=3)
    batch = batch_for(config, seed=4)
    labels = np.where(batch["attention_mask"] > 0, batch["input_ids"], -100)
    assert np.isfinite(float(model(**batch, labels=labels).loss))
    assert config.padding_visible and host.padded_length(model, SEQ) == SEQ     # the convolution sees padding


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_combinations_build_run_and_unpad_exactly(name):
    config = FlexConfig(**{**SMALL, **COMBINATIONS[name]})
    model = perturb(FlexForMaskedLM(config), seed=1)
    batch = batch_for(config, seed=2)
    labels = np.where(batch["attention_mask"] > 0, batch["input_ids"], -100)
    out = model(**batch, labels=labels, output_hidden_states=True)
    assert np.isfinite(float(out.loss))
    assert out.logits.shape == (3, SEQ, config.vocab_size) and len(out.hidden_states) == config.num_hidden_layers + 1
    other = FlexForMaskedLM(FlexConfig(**{**SMALL, **COMBINATIONS[name], "unpad": not config.unpad}))
    for a, b in zip(model_state_dict(other).values(), model_state_dict(model).values()):
        a.set_value(b[...])
    other.eval()
    twin = other(**batch, labels=labels, output_hidden_states=True)
    mask = batch["attention_mask"]
    assert max_diff(twin.logits, out.logits, mask) <= TOLERANCE
    assert max_diff(twin.last_hidden_state, out.last_hidden_state, mask) <= TOLERANCE
    np.testing.assert_allclose(float(twin.loss), float(out.loss), atol=TOLERANCE)
    model.train()       # dropout on: still a finite loss
    assert np.isfinite(float(model(**batch, labels=labels).loss))


def test_round_trip_under_model_type_flex(tmp_path):
    model = perturb(FlexForMaskedLM(FlexConfig(**{**SMALL, **COMBINATIONS["factorised-E"]})))
    save_pretrained(model, tmp_path)
    assert auto.read_config(tmp_path).model_type == "flex"
    loaded = minibert.from_pretrained(tmp_path)
    assert type(loaded) is FlexForMaskedLM and loaded.config == model.config
    batch = batch_for(model.config)
    np.testing.assert_array_equal(np.asarray(loaded(**batch).logits), np.asarray(model(**batch).logits))


def test_sequence_classification_head_reads_the_pooler():
    model_class = auto.model_class("flex", "sequence-classification")
    model = model_class(FlexConfig(**SMALL, positions="alibi", unpad=True))
    model.eval()
    batch = batch_for(model.config)
    out = model(**batch, labels=np.array([0, 1, 1]))
    assert out.logits.shape == (3, 2) and np.isfinite(float(out.loss))
    assert "flex.pooler.dense.weight" in model_state_dict(model)


@pytest.mark.parametrize("positions", ["learned", "alibi", "rope"])
@pytest.mark.parametrize("unpadded", [False, True])
def test_packed_documents_equal_documents_run_alone(positions, unpadded):
    """Two documents in one row (segment_ids 1, 2) see only themselves, positions restarting: each token's logits are
    those of its document run as a row of its own."""
    model = perturb(FlexForMaskedLM(FlexConfig(**{**SMALL, "positions": positions, "unpad": unpadded})), seed=5)
    ids = np.random.default_rng(6).integers(3, SMALL["vocab_size"], (1, 11))
    segments = np.array([[1] * 6 + [2] * 4 + [0]])
    mask = (segments > 0).astype(np.int32)
    packed = np.asarray(model(ids, attention_mask=mask, segment_ids=segments).logits)[0]
    first = np.asarray(model(ids[:, :6]).logits)[0]
    second = np.asarray(model(ids[:, 6:10]).logits)[0]
    assert np.abs(packed[:6] - first).max() <= 1e-5 and np.abs(packed[6:10] - second).max() <= 1e-5


@pytest.mark.parametrize("ffn, hidden_act, gate", [
    ("glu", "gelu", lambda z: 1 / (1 + np.exp(-z))),                          # Dauphin et al. 2017: σ whatever act
    ("geglu", "gelu", lambda z: 0.5 * z * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))),   # Shazeer 2020: GELU
    ("geglu", "silu", lambda z: z / (1 + np.exp(-z))),                         # SwiGLU
    ("mlp", "relu", None)])
def test_feed_forward_against_numpy(ffn, hidden_act, gate):
    """(gate(x W) ⊙ x V) W_o with W_i = [W | V], or act(x W_i) W_o for the MLP, against NumPy."""
    config = FlexConfig(vocab_size=11, hidden_size=6, num_hidden_layers=1, num_attention_heads=2, intermediate_size=5,
                        ffn=ffn, hidden_act=hidden_act)
    layer = flex.FlexFeedForward(config, dtype=np.float32, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    for linear in (layer.Wi, layer.Wo):                                       # biases off their zero init
        linear.bias.set_value(rng.normal(size=linear.bias.shape).astype(np.float32))
    x = rng.normal(size=(2, 3, 6)).astype(np.float32)
    wi, bi = np.asarray(layer.Wi.weight[...]), np.asarray(layer.Wi.bias[...])     # (out, in), as torch stores them
    wo, bo = np.asarray(layer.Wo.weight[...]), np.asarray(layer.Wo.bias[...])
    h = x @ wi.T + bi
    if gate is None:
        inner = np.maximum(h, 0)
    else:
        w, v = np.split(h, 2, axis=-1)
        inner = gate(w) * v
    np.testing.assert_allclose(np.asarray(layer(x)), inner @ wo.T + bo, atol=1e-5)


def test_pretraining_model_adds_bert_nsp_head_on_the_pooler():
    """seq_relationship_logits = W tanh(W_p h_[CLS] + b_p) + b; loss = MLM + NSP cross-entropy (BERT §3.1)."""
    config = FlexConfig(vocab_size=23, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=12,
                        positions="rope", norm="pre")
    model = minibert.FlexForPreTraining(config, rngs=nnx.Rngs(0))
    model.eval()
    rng = np.random.default_rng(0)
    ids, mask = rng.integers(1, 23, (3, 6)), np.array([[1] * 6, [1] * 4 + [0] * 2, [1] * 5 + [0]])
    labels, nsp = np.where(rng.random((3, 6)) < 0.3, ids, -100), np.array([0, 1, 0])
    out = model(input_ids=ids, attention_mask=mask, labels=labels, next_sentence_label=nsp)
    dense, head = model.flex.pooler.dense, model.cls.seq_relationship
    cls_state = np.asarray(out.last_hidden_state[:, 0])
    pooled = np.tanh(cls_state @ np.asarray(dense.weight[...]).T + np.asarray(dense.bias[...]))
    expected = pooled @ np.asarray(head.weight[...]).T + np.asarray(head.bias[...])
    np.testing.assert_allclose(np.asarray(out.seq_relationship_logits), expected, atol=1e-5)
    logp = expected - np.log(np.exp(expected).sum(-1, keepdims=True))
    mlm = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    np.testing.assert_allclose(float(out.loss), float(mlm) - logp[np.arange(3), nsp].mean(), rtol=1e-5)
    assert auto.model_class("flex", "pretraining") is minibert.FlexForPreTraining


def test_rtd_pair_shares_one_embeddings_module_and_saves_both(tmp_path):
    """FlexPretrainer: one embeddings module for generator and discriminator (ELECTRA §3.2), one gradient for it;
    the discriminator and the generator save as two loadable checkpoints."""
    import jax

    config = FlexConfig(vocab_size=31, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=24, positions="alibi", ffn="geglu", norm="pre")
    pair = flex.FlexPretrainer.from_config(config, 0.5, rngs=nnx.Rngs(0))
    assert pair.generator.flex.embeddings is pair.discriminator.flex.embeddings
    assert (pair.generator.config.hidden_size, pair.generator.config.embedding_width) == (8, 16)
    rng = np.random.default_rng(0)
    ids, mask = rng.integers(1, 31, (2, 7)), np.array([[1] * 7, [1] * 5 + [0] * 2])
    labels = np.where(rng.random((2, 7)) < 0.4, ids, -100)
    grads = nnx.grad(lambda m: m(ids, mask, labels=labels, key=jax.random.key(0)).total)(pair)
    tables = [value for path, value in nnx.to_flat_state(grads) if "word_embeddings" in path]
    assert len(tables) == 1 and np.abs(np.asarray(tables[0].get_value())).sum() > 0
    with pytest.raises(ValueError, match="positions: generator alibi, discriminator rope"):
        flex.FlexPretrainer(pair.generator, flex.FlexForReplacedTokenDetection(
            dataclasses.replace(config, positions="rope")))
    bottleneck = flex.FlexPretrainer.from_config(dataclasses.replace(config, norm="post", intra_bottleneck_size=8), 0.5)
    generator = bottleneck.generator.config                  # half of every width: hidden, bottleneck, heads, FFN
    assert (generator.hidden_size, generator.intra_bottleneck_size, generator.num_attention_heads,
            generator.intermediate_size) == (8, 4, 2, 12)
    assert np.isfinite(float(bottleneck(ids, mask, labels=labels, key=jax.random.key(0)).total))
    pair.save_pretrained(tmp_path)
    assert type(minibert.from_pretrained(tmp_path)).__name__ == "FlexForReplacedTokenDetection"
    assert type(minibert.from_pretrained(tmp_path / "generator")).__name__ == "FlexForMaskedLM"
