"""MobileBERT's bottleneck pieces: the trigram embedding, where attention's inputs come from, the projections."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from minibert.nn.attention import MultiHeadSelfAttention, padding_mask, set_attention_implementation
from minibert.nn.bottleneck import (Bottleneck, BottleneckOutput, BottleneckSelfAttention, FactorizedEmbeddings,
                                    ResidualProjection, trigram)

HIDDEN, NARROW = 12, 8


def _x(*shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


def test_trigram_concatenates_next_current_previous_with_zeros_at_the_ends():
    x = jnp.arange(1, 7, dtype=jnp.float32).reshape(1, 3, 2)   # tokens [1 2], [3 4], [5 6]
    expected = [[3, 4, 1, 2, 0, 0],
                [5, 6, 3, 4, 1, 2],
                [0, 0, 5, 6, 3, 4]]
    np.testing.assert_array_equal(np.asarray(trigram(x))[0], expected)
    np.testing.assert_array_equal(np.asarray(trigram(x[:, :1]))[0], [[0, 0, 1, 2, 0, 0]])


def _embeddings(trigram_input, embedding_size):
    return FactorizedEmbeddings(vocab_size=10, embedding_size=embedding_size, hidden_size=HIDDEN,
                                max_position_embeddings=6, type_vocab_size=2, trigram_input=trigram_input,
                                normalization_type="no_norm", eps=1e-5, dropout=0.0, rngs=nnx.Rngs(0))


def test_factorized_embeddings_widen_the_trigram_to_hidden():
    emb = _embeddings(True, 4)
    assert emb.embedding_transformation.weight.shape == (HIDDEN, 3 * 4)
    ids, types = jnp.array([[1, 2, 3]]), jnp.array([[0, 1, 1]])
    out = emb(ids, types)
    expected = (emb.embedding_transformation(trigram(emb.word_embeddings(ids))) + emb.position_embeddings.weight[:3]
                + emb.token_type_embeddings(types))
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), atol=1e-7)


def test_factorized_embeddings_skip_the_projection_only_when_already_hidden_wide():
    emb = _embeddings(False, HIDDEN)
    ids, types = jnp.array([[4, 5]]), jnp.array([[1, 0]])
    expected = emb.word_embeddings(ids) + emb.position_embeddings.weight[:2] + emb.token_type_embeddings(types)
    np.testing.assert_allclose(np.asarray(emb(ids, types)), np.asarray(expected), atol=1e-7)
    assert emb.embedding_transformation.weight.shape == (HIDDEN, HIDDEN)  # kept: reference checkpoints hold it
    assert _embeddings(False, 4)(ids, types).shape == (1, 2, HIDDEN)


@pytest.mark.parametrize("use_bottleneck_attention", [True, False])
@pytest.mark.parametrize("key_query_shared", [True, False])
def test_bottleneck_routes_attention_inputs(use_bottleneck_attention, key_query_shared):
    block = Bottleneck(HIDDEN, NARROW, use_bottleneck_attention=use_bottleneck_attention,
                       key_query_shared_bottleneck=key_query_shared, normalization_type="layer_norm", eps=1e-12,
                       rngs=nnx.Rngs(0))
    assert (block.attention is not None) == key_query_shared
    x = _x(2, 5, HIDDEN)
    query_key, value, residual = block(x)
    narrow = block.input(x)
    np.testing.assert_array_equal(residual, narrow)
    if use_bottleneck_attention:
        np.testing.assert_array_equal(query_key, narrow)
        np.testing.assert_array_equal(value, narrow)
    elif key_query_shared:
        np.testing.assert_array_equal(query_key, block.attention(x))
        assert query_key.shape == (2, 5, NARROW) and value is x
    else:
        assert query_key is x and value is x


def test_bottleneck_self_attention_equals_multi_head_attention_on_one_input():
    """With queries, keys and values from the same tensor and the same weights, it is plain MHA."""
    ours = BottleneckSelfAttention(NARROW, NARROW, 2, dropout=0.0, rngs=nnx.Rngs(1))
    plain = MultiHeadSelfAttention(NARROW, 2, dropout=0.0, rngs=nnx.Rngs(2))
    nnx.update(plain, nnx.state(ours, nnx.Param))
    x = _x(2, 5, NARROW, seed=3)
    mask = padding_mask(jnp.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]))
    np.testing.assert_allclose(np.asarray(ours(x, x, mask)), np.asarray(plain(x, mask)), atol=1e-6)
    set_attention_implementation(ours, "fused")
    np.testing.assert_allclose(np.asarray(ours(x, x, mask)), np.asarray(plain(x, mask)), atol=1e-6)


def test_bottleneck_self_attention_takes_wide_values():
    attn = BottleneckSelfAttention(NARROW, HIDDEN, 4, dropout=0.0, rngs=nnx.Rngs(0))
    assert attn.value.weight.shape == (NARROW, HIDDEN)
    assert attn(_x(2, 5, NARROW), _x(2, 5, HIDDEN, seed=1), None).shape == (2, 5, NARROW)
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        BottleneckSelfAttention(NARROW, HIDDEN, 3, dropout=0.0, rngs=nnx.Rngs(0))


def test_residual_projection_is_post_norm():
    proj = ResidualProjection(NARROW, HIDDEN, normalization_type="no_norm", eps=1e-5, dropout=0.0, rngs=nnx.Rngs(0))
    proj.LayerNorm.weight.set_value(jnp.full((HIDDEN,), 2.0))
    h, residual = _x(2, 3, NARROW), _x(2, 3, HIDDEN, seed=1)
    np.testing.assert_allclose(np.asarray(proj(h, residual)), 2.0 * np.asarray(residual + proj.dense(h)), atol=1e-6)


def test_bottleneck_output_widens_back_with_the_block_input_as_residual():
    common = dict(normalization_type="layer_norm", eps=1e-5, bottleneck_eps=1e-12, dropout=0.1, rngs=nnx.Rngs(0))
    out = BottleneckOutput(16, NARROW, bottleneck_out=HIDDEN, **common)
    assert out.dropout.rate == 0.0 and out.bottleneck.dropout.rate == 0.1  # the reference drops only after widening
    assert out.LayerNorm.eps == 1e-5 and out.bottleneck.LayerNorm.eps == 1e-12
    h, residual, block_input = _x(2, 3, 16), _x(2, 3, NARROW, seed=1), _x(2, 3, HIDDEN, seed=2)
    out.eval()
    narrow = out.LayerNorm(residual + out.dense(h))
    expected = out.bottleneck.LayerNorm(block_input + out.bottleneck.dense(narrow))
    np.testing.assert_allclose(np.asarray(out(h, residual, block_input)), np.asarray(expected), atol=1e-6)
    flat = BottleneckOutput(16, NARROW, bottleneck_out=None, **common)
    assert flat.bottleneck is None and flat.dropout.rate == 0.1
    assert flat(h, residual, block_input).shape == (2, 3, NARROW)
