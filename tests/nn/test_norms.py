"""Normalization layers: NoNorm is γ ∘ x + β with no statistics; `normalization` picks a norm by config name."""

import jax.numpy as jnp
import numpy as np
import pytest

from minibert.nn.norms import LayerNorm, NoNorm, normalization


def test_nonorm_is_elementwise_affine():
    norm = NoNorm(4)
    assert set(vars(norm)) >= {"weight", "bias"}
    norm.weight.set_value(jnp.array([1.0, 2.0, -1.0, 0.5]))
    norm.bias.set_value(jnp.array([0.0, 1.0, 2.0, -3.0]))
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    expected = x * np.array([1, 2, -1, 0.5], np.float32) + np.array([0, 1, 2, -3], np.float32)
    np.testing.assert_array_equal(np.asarray(norm(x)), expected)


def test_nonorm_keeps_scale_and_mean_where_layernorm_removes_them():
    x = np.random.default_rng(1).normal(size=(3, 8)).astype(np.float32)
    shifted_scaled = 5.0 * x + 2.0
    np.testing.assert_allclose(np.asarray(NoNorm(8)(shifted_scaled)), shifted_scaled)  # identity at init
    layer_norm = LayerNorm(8, eps=1e-12)
    np.testing.assert_allclose(np.asarray(layer_norm(shifted_scaled)), np.asarray(layer_norm(x)), atol=1e-5)


def test_nonorm_computes_in_the_compute_dtype():
    out = NoNorm(4, dtype=jnp.bfloat16)(np.ones((2, 4), np.float32))
    assert out.dtype == jnp.bfloat16
    assert NoNorm(4).weight.dtype == jnp.float32


def test_normalization_by_name():
    layer = normalization("layer_norm", 6, eps=1e-5)
    assert isinstance(layer, LayerNorm) and layer.eps == 1e-5
    assert isinstance(normalization("no_norm", 6, eps=1e-5), NoNorm)
    with pytest.raises(ValueError, match="batch_norm"):
        normalization("batch_norm", 6, eps=1e-5)
