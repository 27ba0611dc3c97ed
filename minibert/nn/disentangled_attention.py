"""Disentangled self-attention: content and relative position attend to each other separately.

He, Liu, Gao & Chen, "DeBERTa: Decoding-enhanced BERT with Disentangled Attention" (ICLR 2021), §3.1, Eq. 2–4.
Token i is its content H_i and its position relative to token j, δ(i, j) (nn/relative_position.py: i − j, or its
log bucket). With Q = H W_q, K = H W_k, V = H W_v and, from the shared relative embeddings P (2k, hidden),
Q_r = P W_q,r and K_r = P W_k,r, the score of query i for key j is the sum of three terms,
    A_ij = Q_i K_jᵀ                      content → content (c2c)
         + Q_i K_r[idx(i, j)]ᵀ           content → position (c2p)
         + K_j Q_r[idx(i, j)]ᵀ           position → content (p2c)
    idx(i, j) = clamp(δ(i, j) + k, 0, 2k − 1)
    out = softmax(A / √(d · (1 + number of position terms))) V                                       (Eq. 4)
k, the attention span, is `position_buckets` when positive, else `max_relative_positions`. The paper writes p2c
with δ(j, i); the authors' code and transformers' use −δ(j, i), which is δ(i, j) since δ is odd (a bucket of
i − j): both terms read the same index. `pos_att_type` says which position terms there are (any subset of
"c2p", "p2c", in any order: the sum does not depend on it); with `share_att_key` (DeBERTa-v3) the position
projections are the content ones, W_q,r = W_q and W_k,r = W_k (with their biases), else they are `pos_key_proj`
(c2p) and `pos_query_proj` (p2c). The scale counts the listed terms even when `relative_attention` is off
and they are not computed, as transformers does.

The mask (transformers' `DebertaV2Encoder.get_attention_mask`): a 0/1 (batch, seq) attention_mask becomes
query ∧ key, (batch, 1, seq, seq): a padded query sees no key, every score of its row is the most negative float
and its attention is uniform, as with `finfo.min` in torch. Softmax, attention dropout and the recorded maps
(`AttentionMap`, for output_attentions) are nn/attention.py's `dot_product_attention`; A's 1/√d is its, the rest
of the scale is folded into the queries and the position terms enter as its additive bias.
Names follow transformers' `DisentangledSelfAttention` (modeling_deberta_v2.py), so parameter paths are keys.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from minibert.nn.attention import dot_product_attention
from minibert.nn.linear import Linear

POSITION_TERMS = ("c2p", "p2c")


def query_key_mask(attention_mask: jax.Array) -> jax.Array:
    """(batch, seq) of 1 = real, 0 = padding → (batch, 1, seq, seq) bool: query i may see key j when both are
    real."""
    real = attention_mask > 0
    return real[:, None, :, None] & real[:, None, None, :]


def relative_index(relative_pos: np.ndarray, span: int) -> np.ndarray:
    """idx(i, j) = clamp(δ(i, j) + k, 0, 2k − 1): the row of the relative embeddings that query i reads for
    key j. (q_seq, k_seq) → (q_seq, k_seq)."""
    return np.clip(relative_pos + span, 0, 2 * span - 1)


class DisentangledSelfAttention(nnx.Module):
    """Disentangled multi-head self-attention (module docstring): (batch, seq, hidden) → (batch, seq, hidden),
    the heads concatenated, before the output projection (`attention.output`)."""

    def __init__(self, hidden_size: int, num_heads: int, *, pos_att_type: list[str], relative_attention: bool,
                 share_att_key: bool, dropout: float, pos_dropout: float, init_std: float = 0.02, dtype=jnp.float32,
                 rngs: nnx.Rngs):
        unknown = set(pos_att_type) - set(POSITION_TERMS)
        if unknown:
            raise ValueError(f"pos_att_type {pos_att_type}: unknown {sorted(unknown)}; DeBERTa-v2 has {POSITION_TERMS}")
        self.num_heads = num_heads
        self.pos_att_type = tuple(t for t in POSITION_TERMS if t in pos_att_type)
        self.relative_attention = relative_attention
        self.share_att_key = share_att_key
        self.attention_implementation = "reference"
        self.record_attention = False
        linear = dict(init_std=init_std, dtype=dtype, rngs=rngs)
        self.query_proj = Linear(hidden_size, hidden_size, **linear)
        self.key_proj = Linear(hidden_size, hidden_size, **linear)
        self.value_proj = Linear(hidden_size, hidden_size, **linear)
        own = relative_attention and not share_att_key
        self.pos_key_proj = Linear(hidden_size, hidden_size, **linear) if own and "c2p" in pos_att_type else None
        self.pos_query_proj = Linear(hidden_size, hidden_size, **linear) if own and "p2c" in pos_att_type else None
        self.pos_dropout = nnx.Dropout(pos_dropout, rngs=rngs) if relative_attention else None
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array, mask: jax.Array, relative_pos: np.ndarray | None = None,
                 rel_embeddings: jax.Array | None = None) -> jax.Array:
        """x (batch, seq, hidden); mask (batch, 1, seq, seq) bool; with `relative_attention`, relative_pos
        (seq, seq) int δ(i, j) and rel_embeddings (2k, hidden), P before this layer's dropout."""
        split = lambda t: t.reshape(*t.shape[:-1], self.num_heads, -1)  # (…, h·d) → (…, h, d)
        q, k, v = split(self.query_proj(x)), split(self.key_proj(x)), split(self.value_proj(x))
        factor = 1 + len(self.pos_att_type)                                  # Eq. 4: A / √(d·factor)
        bias = None
        if self.relative_attention and self.pos_att_type:
            bias = self.position_scores(q, k, relative_pos, self.pos_dropout(rel_embeddings))
            bias = bias / math.sqrt(q.shape[-1] * factor)                    # (c2p + p2c) / √(d·factor)
        out = dot_product_attention(q / math.sqrt(factor), k, v, bias, self.dropout, mask=mask,  # c2c / √(d·factor)
                                    implementation=self.attention_implementation, recorder=self)
        return out.reshape(*x.shape[:-1], -1)

    def position_scores(self, q: jax.Array, k: jax.Array, relative_pos: np.ndarray,
                        rel_embeddings: jax.Array) -> jax.Array:
        """c2p + p2c, unscaled: q, k (batch, seq, heads, d), relative_pos (seq, seq), rel_embeddings (2k, hidden)
        → (batch, heads, q_seq, k_seq)."""
        span = rel_embeddings.shape[0] // 2
        idx = jnp.asarray(relative_index(relative_pos, span))                        # (q, k) → row r of P
        split = lambda t: t.reshape(t.shape[0], self.num_heads, -1)                   # (2k, h·d) → (2k, h, d)
        scores = 0.0
        if "c2p" in self.pos_att_type:
            k_r = split((self.key_proj if self.share_att_key else self.pos_key_proj)(rel_embeddings))
            c2p = jnp.einsum("bqhd,rhd->bhqr", q, k_r)                                 # Q_i · K_r[r]
            scores += jnp.take_along_axis(c2p, jnp.broadcast_to(idx, c2p.shape[:2] + idx.shape), axis=-1)
        if "p2c" in self.pos_att_type:
            q_r = split((self.query_proj if self.share_att_key else self.pos_query_proj)(rel_embeddings))
            p2c = jnp.einsum("bkhd,rhd->bhrk", k, q_r)                                 # K_j · Q_r[r]
            scores += jnp.take_along_axis(p2c, jnp.broadcast_to(idx, p2c.shape[:2] + idx.shape), axis=-2)
        return scores
