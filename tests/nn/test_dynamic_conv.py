"""Span-based dynamic convolution against the paper's equation, written as loops; the separable conv against
PyTorch's Conv1d (which pins the weight layout, (out, in/groups, k), that checkpoints use)."""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from minibert.nn.dynamic_conv import SeparableConv1D, span_based_dynamic_convolution, unfold_spans


def reference_dynamic_conv(q, k_s, v, w_f, b_f, kernel_size):
    """Jiang et al. (2020) §3.2, literally:
        Conv(Q, V; i) = Σ_{j=1..k} softmax(W_f (Q ⊙ K_s))_{i,j} · V_{i+j−⌈(k+1)/2⌉}
    per head, with 1-based i and j; V is zero outside the sequence. q, k_s: (b, s, h·d); v: (b, s, h, d)."""
    batch, seq, heads, head_dim = v.shape
    out = np.zeros_like(v, dtype=np.float64)
    for b in range(batch):
        for i in range(1, seq + 1):
            logits = ((q[b, i - 1] * k_s[b, i - 1]) @ w_f + b_f).reshape(heads, kernel_size)   # W_f (Q ⊙ K_s)
            for h in range(heads):
                kernel = np.exp(logits[h] - logits[h].max())
                kernel /= kernel.sum()                                                         # softmax over taps
                for j in range(1, kernel_size + 1):
                    source = i + j - math.ceil((kernel_size + 1) / 2)
                    if 1 <= source <= seq:
                        out[b, i - 1, h] += kernel[j - 1] * v[b, source - 1, h]
    return out


@pytest.mark.parametrize("kernel_size,seq", [(1, 4), (3, 7), (5, 6), (9, 4)], ids=lambda x: str(x))
def test_dynamic_convolution_matches_the_paper_equation(kernel_size, seq):
    batch, heads, head_dim = 2, 3, 4
    rng = np.random.default_rng(kernel_size * 10 + seq)
    q, k_s = rng.normal(size=(2, batch, seq, heads * head_dim)).astype(np.float32)
    v = rng.normal(size=(batch, seq, heads, head_dim)).astype(np.float32)
    w_f = rng.normal(size=(heads * head_dim, heads * kernel_size)).astype(np.float32)
    b_f = rng.normal(size=heads * kernel_size).astype(np.float32)
    ours = span_based_dynamic_convolution(jnp.asarray(q), jnp.asarray(k_s), jnp.asarray(v), lambda x: x @ w_f + b_f)
    expected = reference_dynamic_conv(q, k_s, v, w_f, b_f, kernel_size)
    np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-5, atol=1e-5)


def test_unfold_spans_centres_each_span_and_zero_pads():
    x = jnp.arange(1, 6, dtype=jnp.float32).reshape(1, 5, 1)            # positions hold 1..5
    spans = np.asarray(unfold_spans(x, 3))[0, :, :, 0]
    np.testing.assert_array_equal(spans, [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 0]])
    with pytest.raises(ValueError, match="must be odd"):
        unfold_spans(x, 4)


@pytest.mark.parametrize("kernel_size", [1, 3, 9])
def test_separable_conv_matches_torch_conv1d(kernel_size):
    import torch

    in_channels, out_channels, seq = 6, 4, 7
    conv = SeparableConv1D(in_channels, out_channels, kernel_size, init_std=1.0, rngs=nnx.Rngs(kernel_size))
    rng = np.random.default_rng(0)
    conv.bias.set_value(rng.normal(size=(out_channels, 1)).astype(np.float32))
    x = rng.normal(size=(2, seq, in_channels)).astype(np.float32)
    depthwise, pointwise, bias = (torch.tensor(np.asarray(p[...]))
                                  for p in (conv.depthwise.weight, conv.pointwise.weight, conv.bias))
    assert depthwise.shape == (in_channels, 1, kernel_size) and pointwise.shape == (out_channels, in_channels, 1)
    h = torch.nn.functional.conv1d(torch.from_numpy(x).transpose(1, 2), depthwise, padding=kernel_size // 2,
                                   groups=in_channels)
    expected = (torch.nn.functional.conv1d(h, pointwise) + bias).transpose(1, 2).numpy()
    np.testing.assert_allclose(np.asarray(conv(x)), expected, rtol=1e-5, atol=1e-5)
