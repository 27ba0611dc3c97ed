"""DeBERTa-v3's pretraining pieces beyond parity (transformers has no RTD model): the replaced-token head against
its formula, GDES inside the pretrainer (the shared table's gradient is the generator's MLM gradient alone), and
the saved discriminator holding E_G + E_Δ."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import minibert
from minibert.checkpoints.hf import model_state_dict
from minibert.models.deberta_v2 import DebertaV2Config, DebertaV2ForReplacedTokenDetection, DebertaV3Pretrainer

CONFIG = dict(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
              max_position_embeddings=32, relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=8,
              share_att_key=True, norm_rel_ebd="layer_norm", position_biased_input=False, legacy=False,
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def batch(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 60, (2, 10))
    labels = np.full((2, 10), -100)
    labels[:, [2, 6]] = ids[:, [2, 6]]
    ids[:, [2, 6]] = 4
    mask = np.ones((2, 10), np.int32)
    mask[1, 8:] = 0
    return jnp.asarray(ids), jnp.asarray(mask), jnp.zeros((2, 10), jnp.int32), jnp.asarray(labels)


def test_the_replaced_token_head_is_the_authors_formula():
    model = DebertaV2ForReplacedTokenDetection(DebertaV2Config(**CONFIG), rngs=nnx.Rngs(0))
    model.eval()
    ids, mask, types, _ = batch()
    out = model(np.asarray(ids), np.asarray(mask), output_hidden_states=True)
    h = np.asarray(out.last_hidden_state, np.float64)
    head = model.mask_predictions
    x = h[:, :1] + h                                                       # h_[CLS] + h_t
    x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + CONFIG.get("layer_norm_eps", 1e-7))
    x = x * np.asarray(head.LayerNorm.weight[...]) + np.asarray(head.LayerNorm.bias[...])
    x = np.asarray(jax.nn.gelu(x @ np.asarray(head.dense.weight[...]).T + np.asarray(head.dense.bias[...]),
                               approximate=False))
    expected = (x @ np.asarray(head.classifier.weight[...]).T + np.asarray(head.classifier.bias[...]))[..., 0]
    np.testing.assert_allclose(np.asarray(out.logits), expected, atol=1e-5)
    assert sorted(k for k in model_state_dict(model) if k.startswith("mask_predictions")) == [
        "mask_predictions.LayerNorm.bias", "mask_predictions.LayerNorm.weight", "mask_predictions.classifier.bias",
        "mask_predictions.classifier.weight", "mask_predictions.dense.bias", "mask_predictions.dense.weight"]


def test_gdes_leaves_the_shared_table_to_the_generator():
    """∂(L_MLM + λ L_RTD)/∂E_G = ∂L_MLM/∂E_G: the discriminator reaches E_Δ only (and E_Δ gets its gradient)."""
    pretrainer = DebertaV3Pretrainer.from_config(DebertaV2Config(**CONFIG), 0.5, rngs=nnx.Rngs(0))
    assert pretrainer.generator.config.num_hidden_layers == 1 and pretrainer.discriminator.config.num_hidden_layers == 2
    ids, mask, types, labels = batch()
    key = jax.random.key(3)
    total = nnx.grad(lambda p: p(ids, mask, types, labels=labels, key=key).total)(pretrainer)
    mlm = nnx.grad(lambda p: p(ids, mask, types, labels=labels, key=key).mlm)(pretrainer)
    flat = lambda g: {".".join(map(str, k)): np.asarray(v[...]) for k, v in nnx.to_flat_state(g)}
    total, mlm = flat(total), flat(mlm)
    table = next(k for k in total if k.endswith("word_embeddings.generator.weight"))
    np.testing.assert_allclose(total[table], mlm[table], atol=1e-7)
    delta = next(k for k in total if k.endswith("word_embeddings.delta"))
    assert np.abs(total[delta]).max() > 0 and not mlm[delta].any()


def test_the_saved_discriminator_holds_the_merged_table(tmp_path):
    pretrainer = DebertaV3Pretrainer.from_config(DebertaV2Config(**CONFIG), 0.5, rngs=nnx.Rngs(0))
    shared = pretrainer.discriminator.deberta.embeddings.word_embeddings
    shared.delta.set_value(jnp.full(shared.delta.shape, 0.25))
    pretrainer.save_pretrained(tmp_path)
    discriminator, generator = minibert.from_pretrained(tmp_path), minibert.from_pretrained(tmp_path / "generator")
    assert type(discriminator).__name__ == "DebertaV2ForReplacedTokenDetection"
    assert type(generator).__name__ == "DebertaV2ForMaskedLM"
    e_g = np.asarray(generator.deberta.embeddings.word_embeddings.weight[...])
    np.testing.assert_allclose(discriminator.deberta.embeddings.word_embeddings.weight[...], e_g + 0.25, atol=1e-7)
    assert pretrainer.discriminator.deberta.embeddings.word_embeddings is shared      # training state untouched
