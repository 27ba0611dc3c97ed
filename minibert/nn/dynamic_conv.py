"""Span-based dynamic convolution and the depthwise-separable convolution that gives it its span-aware key.

ConvBERT (Jiang et al., 2020, §3.2). A lightweight convolution of kernel width k over the values,
    LConv(V, W; i) = Σ_{j=1..k} W_j · V_{i + j − ⌈(k+1)/2⌉},
becomes *dynamic* when the kernel W is generated per position (and per head) from the input, and *span-based*
when that generation sees the local span around the position, not only the token itself:
    K_s = SepConv(X)                                               span-aware key, a depthwise-separable conv
    Conv(Q, V; i) = Σ_j softmax(W_f (Q ⊙ K_s))_{i,j} · V_{i + j − ⌈(k+1)/2⌉}
Each head's kernel is shared by all of the head's channels (the "lightweight" part) and is normalised by a
softmax over the k taps. Positions beyond either end of the sequence are zeros; padding tokens are *not*
masked out — Hugging Face and the original code do the same, so a real token near padding sees it.

Tensors are channels-last, (batch, seq, ...); convolution weights keep PyTorch's `Conv1d` layout
(out_channels, in_channels / groups, k) so that checkpoint keys and shapes are Hugging Face's.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx


def unfold_spans(x: jax.Array, kernel_size: int) -> jax.Array:
    """The span of `kernel_size` positions centred on each position: (batch, seq, ...) → (batch, seq, k, ...).

    spans[:, i, j] = x[:, i + j − (k−1)/2] for j = 0..k−1 (0-based, = the paper's i + j − ⌈(k+1)/2⌉ with
    j = 1..k), zero where that index falls outside [0, seq). PyTorch's `nn.functional.unfold` does the same."""
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd so that the span is centred on its position, got {kernel_size}")
    half, seq = (kernel_size - 1) // 2, x.shape[1]
    padded = jnp.pad(x, [(0, 0), (half, half)] + [(0, 0)] * (x.ndim - 2))
    return jnp.stack([padded[:, j:j + seq] for j in range(kernel_size)], axis=2)


def span_based_dynamic_convolution(query: jax.Array, span_key: jax.Array, values: jax.Array,
                                   kernel_generator: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """Conv(Q, V; i) = Σ_j softmax(W_f (Q ⊙ K_s))_{i,j} · V_{i + j − ⌈(k+1)/2⌉}   (Jiang et al., 2020, §3.2).

    query Q, span_key K_s: (batch, seq, heads·head_dim); values V: (batch, seq, heads, head_dim);
    kernel_generator W_f: (batch, seq, heads·head_dim) → (batch, seq, heads·k). Returns (batch, seq, heads, head_dim).
    The kernel width k is read from W_f's output. The softmax is taken in float32."""
    batch, seq, heads, _ = values.shape
    logits = kernel_generator(query * span_key).reshape(batch, seq, heads, -1)       # W_f (Q ⊙ K_s): (b, s, h, k)
    kernel = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(values.dtype)  # softmax over the k taps
    spans = unfold_spans(values, logits.shape[-1])                                    # V_{i+j−⌈(k+1)/2⌉}: (b, s, k, h, d)
    return jnp.einsum("bshj,bsjhd->bshd", kernel, spans)                              # Σ_j kernel_{i,j} · V_...


class DepthwiseConv1d(nnx.Module):
    """Each channel convolved with its own kernel, zero-padded to keep the length (PyTorch `Conv1d`, groups =
    channels, no bias): y[:, i, c] = Σ_j weight[c, 0, j] · x[:, i + j − (k−1)/2, c].
    (batch, seq, channels) → (batch, seq, channels); `weight` is (channels, 1, k)."""

    def __init__(self, channels: int, kernel_size: int, *, init_std: float = 0.02, dtype=jnp.float32, rngs: nnx.Rngs):
        shape = (channels, 1, kernel_size)
        self.weight = nnx.Param(init_std * jax.random.normal(rngs.params(), shape, jnp.float32))
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        spans = unfold_spans(x.astype(self.dtype), self.weight.shape[-1])              # (b, s, k, c)
        return jnp.einsum("bsjc,cj->bsc", spans, self.weight[...][:, 0].astype(self.dtype))


class PointwiseConv1d(nnx.Module):
    """A kernel-width-1 convolution, i.e. a per-position linear map without bias (PyTorch `Conv1d`, k = 1):
    (batch, seq, in_channels) → (batch, seq, out_channels); `weight` is (out_channels, in_channels, 1)."""

    def __init__(self, in_channels: int, out_channels: int, *, init_std: float = 0.02, dtype=jnp.float32,
                 rngs: nnx.Rngs):
        shape = (out_channels, in_channels, 1)
        self.weight = nnx.Param(init_std * jax.random.normal(rngs.params(), shape, jnp.float32))
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.einsum("bsi,oi->bso", x.astype(self.dtype), self.weight[...][:, :, 0].astype(self.dtype))


class SeparableConv1D(nnx.Module):
    """Depthwise-separable convolution, pointwise(depthwise(x)) + bias (Jiang et al., 2020, §3.2; HF
    `SeparableConv1D`): the span-aware key K_s. (batch, seq, in_channels) → (batch, seq, out_channels).
    `bias` is (out_channels, 1), Hugging Face's shape."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, init_std: float = 0.02,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        self.depthwise = DepthwiseConv1d(in_channels, kernel_size, init_std=init_std, dtype=dtype, rngs=rngs)
        self.pointwise = PointwiseConv1d(in_channels, out_channels, init_std=init_std, dtype=dtype, rngs=rngs)
        self.bias = nnx.Param(jnp.zeros((out_channels, 1), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.pointwise(self.depthwise(x))
        return y + self.bias[...][:, 0].astype(y.dtype)
