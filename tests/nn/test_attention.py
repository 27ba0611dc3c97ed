"""Attention: the reference path against a NumPy softmax, the fused path against the reference, the masks."""

import jax
import jax.numpy as jnp
from flax import nnx
import numpy as np
import pytest

from minibert.nn.attention import (document_mask, dot_product_attention, forward_with_attention_maps, padding_mask,
                                   record_attention_maps, segment_mask, set_attention_implementation, window_mask)


def numpy_attention(q, k, v, allowed):
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
    scores = np.where(allowed, scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", p, v)


@pytest.fixture
def qkv():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((2, 7, 3, 8)).astype(np.float32) for _ in range(3)]


def test_reference_matches_numpy_with_padding(qkv):
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3])
    ours = dot_product_attention(*map(jnp.asarray, qkv), mask=padding_mask(jnp.asarray(mask)))
    np.testing.assert_allclose(ours, numpy_attention(*qkv, mask[:, None, None, :] > 0), atol=1e-5)


@pytest.mark.parametrize("kind", ["padding", "segments", "holed+segments", "window+bias"])
def test_fused_equals_reference(qkv, kind):
    q, k, v = map(jnp.asarray, qkv)
    bias = None
    if kind == "padding":
        mask = padding_mask(jnp.array([[1] * 7, [1] * 5 + [0] * 2]))
    elif kind == "segments":
        mask = segment_mask(jnp.array([[1, 1, 1, 2, 2, 3, 0], [1, 1, 1, 1, 1, 1, 1]]))
    elif kind == "holed+segments":
        mask = document_mask(jnp.array([[1, 0, 1, 1, 1, 1, 0], [1, 1, 0, 1, 1, 1, 1]]),
                             jnp.array([[1, 1, 1, 2, 2, 3, 0], [1, 1, 1, 1, 1, 1, 1]]))
    else:
        mask = window_mask(7, 2, 2)
        bias = -jnp.abs(jnp.arange(7)[None, :] - jnp.arange(7)[:, None])[None, None] * 0.5
    ref = dot_product_attention(q, k, v, bias, mask=mask)
    fused = dot_product_attention(q, k, v, bias, mask=mask, implementation="fused")
    real = np.asarray(jnp.broadcast_to(mask, (2, 3, 7, 7)).any(-1)).transpose(0, 2, 1)  # (b, q, h): has a key
    np.testing.assert_allclose(np.asarray(fused)[real], np.asarray(ref)[real], atol=1e-5)


@pytest.mark.parametrize("rows", [[[1] * 7, [1] * 3 + [0] * 4], [[1] * 7, [0] * 3 + [1] * 4], [[1] * 7, [0] * 7]],
                         ids=["right-padded", "left-padded", "empty-row"])
def test_fused_padding_as_lengths_keeps_values_and_gradients(qkv, rows):
    """Right padding goes to the kernel as key lengths, anything else as a mask: the same values and gradients on
    every query row (padded ones too), nothing non-finite."""
    q, k, v = map(jnp.asarray, qkv)
    mask = padding_mask(jnp.array(rows))
    loss = lambda impl: lambda q, k, v: jnp.sum(dot_product_attention(q, k, v, mask=mask, implementation=impl) ** 2)
    for ref, fused in zip(jax.grad(loss("reference"), argnums=(0, 1, 2))(q, k, v),
                          jax.jit(jax.grad(loss("fused"), argnums=(0, 1, 2)))(q, k, v)):
        assert np.isfinite(np.asarray(fused)).all()
        np.testing.assert_allclose(fused, ref, atol=1e-5)
    fused = jax.jit(lambda q, k, v: dot_product_attention(q, k, v, mask=mask, implementation="fused"))(q, k, v)
    np.testing.assert_allclose(fused, dot_product_attention(q, k, v, mask=mask), atol=1e-5)


def test_segment_mask_keeps_documents_apart():
    m = np.asarray(segment_mask(jnp.array([[1, 1, 2, 0]])))[0, 0]
    assert m.tolist() == [[True, True, False, False], [True, True, False, False],
                          [False, False, True, False], [False, False, False, False]]


def test_document_mask_is_visibility_and_documents():
    """The mask is 0/1 visibility (a hole hides one key, other keys of the row stay visible to each other);
    documents come only from segment ids."""
    holed = jnp.array([[1, 1, 0, 1, 1]])
    m = np.asarray(document_mask(holed))
    assert m.shape == (1, 1, 1, 5) and m[0, 0, 0].tolist() == [True, True, False, True, True]
    m = np.asarray(document_mask(holed, jnp.array([[1, 1, 1, 2, 0]])))[0, 0]
    assert m.tolist() == [[True, True, False, False, False], [True, True, False, False, False],
                          [True, True, False, False, False], [False, False, False, True, False],
                          [False, False, False, False, False]]


def test_window_mask():
    m = np.asarray(window_mask(5, 1, 1))[0, 0]
    assert m.sum(1).tolist() == [2, 3, 3, 3, 2] and (m == m.T).all()


def test_switching_implementation_keeps_outputs():
    from minibert import BertConfig, BertModel

    model = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32))
    model.eval()
    ids = np.arange(12).reshape(2, 6)
    mask = np.array([[1] * 6, [1] * 3 + [0] * 3])
    ref = model(ids, attention_mask=mask).last_hidden_state
    set_attention_implementation(model, "fused")
    fused = model(ids, attention_mask=mask).last_hidden_state
    np.testing.assert_allclose(np.asarray(fused)[mask > 0], np.asarray(ref)[mask > 0], atol=1e-5)
    with pytest.raises(ValueError, match="unknown attention implementation"):
        set_attention_implementation(model, "flash")


@pytest.mark.parametrize("family", ["bert", "mobilebert", "convbert", "electra", "roberta", "mosaicbert", "modernbert"])
def test_recorded_attention_maps_are_each_layers_probabilities(family):
    from minibert import presets
    from minibert.models import auto

    spec, values = presets.preset(family, "tiny")
    model_class = auto.model_class_by_name(spec.objectives["mlm"])
    model = model_class(model_class.config_class(**{**values, "vocab_size": 64, "pad_token_id": 0}), rngs=nnx.Rngs(0))
    model.eval()
    set_attention_implementation(model, "fused")              # recording falls back to the reference path
    ids = jnp.asarray(np.random.default_rng(0).integers(1, 64, (2, 9)))
    mask = jnp.asarray([[1] * 9, [1] * 6 + [0] * 3])
    expected = model(ids, mask).logits
    out, maps = forward_with_attention_maps(model, ids, mask)
    assert maps == []                                          # nothing recorded unless asked
    record_attention_maps(model)
    out, maps = forward_with_attention_maps(model, ids, mask)
    np.testing.assert_allclose(out.logits, expected, atol=1e-5)
    assert len(maps) == model.config.num_hidden_layers
    for probs in maps:
        assert probs.shape[0] == 2 and probs.shape[2:] == (9, 9)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
        assert float(jnp.abs(probs[1, :, :6, 6:]).max()) == 0.0  # real queries give padded keys no attention
