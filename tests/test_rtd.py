"""Replaced token detection (minibert/rtd.py) and the generator/discriminator pair that shares embeddings."""

import dataclasses
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from minibert import losses
from minibert.checkpoints.hf import model_state_dict
from minibert.models.electra import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, ElectraPretrainer
from minibert.rtd import RTD_WEIGHT, electra_loss, sample_replacements

VOCAB, MASK_ID = 23, 4
GENERATOR = ElectraConfig(vocab_size=VOCAB, embedding_size=16, hidden_size=8, num_hidden_layers=1,
                          num_attention_heads=2, intermediate_size=12, max_position_embeddings=16)
DISCRIMINATOR = ElectraConfig(vocab_size=VOCAB, embedding_size=16, hidden_size=16, num_hidden_layers=1,
                              num_attention_heads=2, intermediate_size=20, max_position_embeddings=16)


def masked_batch(batch=3, seq=10, seed=0):
    """Original ids, the masked input, MLM labels (originals at masked positions, -100 elsewhere), a padding mask."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, (batch, seq))
    attention_mask = (np.arange(seq)[None] < np.linspace(seq, seq // 2, batch).astype(int)[:, None]).astype(np.int32)
    masked = (rng.random((batch, seq)) < 0.4) & (attention_mask == 1)
    masked[:, 0] = True
    return ids, np.where(masked, MASK_ID, ids), np.where(masked, ids, -100), attention_mask


def one_hot_logits(ids, scale=100.0):
    """Generator logits that put (almost) all the probability on `ids`: (batch, seq, VOCAB)."""
    return scale * jax.nn.one_hot(ids, VOCAB)


def test_only_masked_positions_are_replaced():
    ids, input_ids, labels, _ = masked_batch()
    logits = jax.random.normal(jax.random.key(0), (*ids.shape, VOCAB))
    corrupted, replaced = sample_replacements(logits, input_ids, labels, jax.random.key(1))
    keep = labels == -100
    np.testing.assert_array_equal(np.asarray(corrupted)[keep], input_ids[keep])
    assert not np.asarray(replaced)[keep].any()
    assert (np.asarray(corrupted)[~keep] != MASK_ID).any()   # the [MASK]s are gone (VOCAB tokens to choose from)
    np.testing.assert_array_equal(np.asarray(replaced), np.asarray(corrupted) != np.where(keep, ids, labels))


def test_a_sample_equal_to_the_original_counts_as_original():
    ids, input_ids, labels, _ = masked_batch()
    corrupted, replaced = sample_replacements(one_hot_logits(ids), input_ids, labels, jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(corrupted), ids)
    assert not np.asarray(replaced).any()
    corrupted, replaced = sample_replacements(one_hot_logits((ids + 1) % VOCAB), input_ids, labels, jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(replaced), labels != -100)


def test_samples_follow_the_generator_softmax():
    probs = np.array([0.5, 0.3, 0.2] + [0.0] * (VOCAB - 3))
    logits = jnp.broadcast_to(jnp.log(jnp.asarray(probs, jnp.float32)), (200, 100, VOCAB))
    labels = np.full((200, 100), 7)
    corrupted, _ = sample_replacements(logits, np.full((200, 100), MASK_ID), labels, jax.random.key(3))
    frequencies = np.bincount(np.asarray(corrupted).ravel(), minlength=VOCAB) / corrupted.size
    np.testing.assert_allclose(frequencies, probs, atol=0.01)
    again, _ = sample_replacements(logits, np.full((200, 100), MASK_ID), labels, jax.random.key(3))
    np.testing.assert_array_equal(np.asarray(again), np.asarray(corrupted))   # a key fixes the sample


def test_loss_is_mlm_plus_weighted_rtd_with_logits_functions():
    """The objective takes any callables returning `.logits`; here stubs with known logits."""
    ids, input_ids, labels, attention_mask = masked_batch()
    generator_logits = one_hot_logits((ids + 1) % VOCAB, scale=3.0)        # every sample replaces
    discriminator_logits = jnp.asarray(np.random.default_rng(1).normal(size=ids.shape), jnp.float32)
    seen = {}

    def generator(x, *, attention_mask, token_type_ids):
        return SimpleNamespace(logits=generator_logits)

    def discriminator(x, *, attention_mask, token_type_ids):
        seen["corrupted"] = x
        return SimpleNamespace(logits=discriminator_logits)

    key = jax.random.key(0)
    total, mlm, rtd, _ = electra_loss(generator, discriminator, input_ids, labels, attention_mask, key)
    corrupted, replaced = sample_replacements(generator_logits, input_ids, labels, key)
    np.testing.assert_array_equal(np.asarray(seen["corrupted"]), np.asarray(corrupted))
    np.testing.assert_allclose(mlm, losses.masked_lm_loss(generator_logits, labels))
    expected_rtd = losses.replaced_token_detection_loss(discriminator_logits, replaced, attention_mask)
    np.testing.assert_allclose(rtd, expected_rtd)
    np.testing.assert_allclose(total, mlm + RTD_WEIGHT * rtd, rtol=1e-6)
    assert RTD_WEIGHT == 50.0
    total_1, *_ = electra_loss(generator, discriminator, input_ids, labels, attention_mask, key, rtd_weight=1.0)
    np.testing.assert_allclose(total_1, mlm + rtd, rtol=1e-6)


def test_rtd_loss_is_bce_over_attended_tokens():
    """Against the definition, −y log σ(x) − (1 − y) log(1 − σ(x)), averaged over attended tokens only,
    and finite for large logits."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 6)) * 3, rng.integers(0, 2, (2, 6))
    mask = np.array([[1] * 6, [1, 1, 1, 0, 0, 0]])
    sigmoid = 1 / (1 + np.exp(-x))
    per_token = -y * np.log(sigmoid) - (1 - y) * np.log(1 - sigmoid)
    expected = per_token[mask == 1].mean()
    np.testing.assert_allclose(losses.replaced_token_detection_loss(jnp.asarray(x, jnp.float32), y, mask), expected,
                               rtol=1e-6)
    big = losses.replaced_token_detection_loss(jnp.array([[1e4, -1e4]]), jnp.array([[0, 1]]), jnp.ones((1, 2)))
    np.testing.assert_allclose(big, 1e4, rtol=1e-6)


@pytest.fixture(scope="module")
def pretrainer():
    model = ElectraPretrainer(ElectraForMaskedLM(GENERATOR, rngs=nnx.Rngs(0)),
                              ElectraForPreTraining(DISCRIMINATOR, rngs=nnx.Rngs(1)))
    model.eval()
    return model


def test_generator_and_discriminator_share_one_set_of_embeddings(pretrainer):
    assert pretrainer.generator.electra.embeddings is pretrainer.discriminator.electra.embeddings
    keys = set(model_state_dict(pretrainer))
    assert {k for k in keys if ".embeddings." in k} == {f"discriminator.electra.embeddings.{name}" for name in (
        "word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
        "LayerNorm.weight", "LayerNorm.bias")}
    assert "generator.electra.embeddings_project.weight" in keys       # the projections are each model's own
    assert "discriminator.electra.embeddings_project.weight" not in keys   # (16 = 16: none)
    # each model alone is still a complete Hugging Face checkpoint
    assert "electra.embeddings.word_embeddings.weight" in model_state_dict(pretrainer.generator)


def test_embeddings_that_cannot_be_shared_are_rejected():
    other = dataclasses.replace(DISCRIMINATOR, embedding_size=8, vocab_size=30)
    with pytest.raises(ValueError, match="embedding_size: generator 16, discriminator 8") as error:
        ElectraPretrainer(ElectraForMaskedLM(GENERATOR), ElectraForPreTraining(other))
    assert "vocab_size: generator 23, discriminator 30" in str(error.value)


def test_discriminator_loss_does_not_reach_the_generator(pretrainer):
    """No gradient through the sampling (§2): d L_Disc / d θ_G = 0, except the shared embeddings."""
    ids, input_ids, labels, attention_mask = masked_batch()

    def rtd_loss(p):
        return p(input_ids, attention_mask, labels=labels, key=jax.random.key(0)).rtd

    grads = nnx.jit(nnx.grad(rtd_loss))(pretrainer)
    flat = {".".join(map(str, k)): np.asarray(v[...]) for k, v in nnx.to_flat_state(grads)}
    for name, g in flat.items():
        if name.startswith("generator."):
            assert not g.any(), name
    assert flat["discriminator.discriminator_predictions.dense.weight"].any()
    assert flat["discriminator.electra.embeddings.word_embeddings.weight"].any()
