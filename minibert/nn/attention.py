"""Scaled dot-product attention and multi-head self-attention.

Vaswani et al. (2017), §3.2.1–3.2.2:
    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + bias) V,     MultiHead = Concat(head_1..head_h) (in `output`)
Tensors are (batch, seq, heads, head_dim); the additive `bias` broadcasts to (batch, heads, q_seq, k_seq)
and carries the padding mask (and, for other families, ALiBi slopes or sliding windows).
Scores and softmax are computed in float32 whatever the compute dtype.
"""

import math

import jax
import jax.numpy as jnp
from flax import nnx

from minibert.nn.linear import Linear


def padding_bias(attention_mask: jax.Array) -> jax.Array:
    """(batch, seq) mask of 1 = real token, 0 = padding → additive bias (batch, 1, 1, seq) in float32.

    Masked keys get the most negative float32, as Hugging Face does (`torch.finfo(dtype).min`)."""
    return jnp.where(attention_mask[:, None, None, :] > 0, 0.0, jnp.finfo(jnp.float32).min)


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array, bias: jax.Array | None = None,
                          dropout: nnx.Dropout | None = None) -> jax.Array:
    """softmax(q kᵀ / √d + bias) v for q, k, v of shape (batch, seq, heads, head_dim)."""
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    if dropout is not None:
        probs = dropout(probs)
    return jnp.einsum("bhqk,bkhd->bqhd", probs, v)


class MultiHeadSelfAttention(nnx.Module):
    """Project to `heads` query/key/value heads and attend (HF `BertSelfAttention`).

    (batch, seq, hidden) → (batch, seq, heads·head_dim): the heads, concatenated, before the output
    projection (which lives in the post-LN sublayer output, `attention.output`)."""

    def __init__(self, hidden_size: int, num_heads: int, *, dropout: float, init_std: float = 0.02,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        self.num_heads = num_heads
        linear = dict(init_std=init_std, dtype=dtype, rngs=rngs)
        self.query = Linear(hidden_size, hidden_size, **linear)
        self.key = Linear(hidden_size, hidden_size, **linear)
        self.value = Linear(hidden_size, hidden_size, **linear)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array, bias: jax.Array | None) -> jax.Array:
        split = lambda t: t.reshape(*t.shape[:-1], self.num_heads, -1)  # (b, s, h·d) → (b, s, h, d)
        out = dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)), bias, self.dropout)
        return out.reshape(*x.shape[:-1], -1)
