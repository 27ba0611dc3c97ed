"""Bottlenecks: a thin Transformer block between wide inter-block feature maps (MobileBERT).

Sun et al., "MobileBERT: a Compact Task-Agnostic BERT for Resource-Limited Devices" (2020):
    §3.1, Figure 1(c)  each block works at the intra-block width `true_hidden_size` (128) while the
                       feature maps between blocks keep the inter-block width `hidden_size` (512):
                       an input projection narrows them, an output projection widens the result back;
                       attention's queries and keys come from a (shared) bottleneck, values from either
                       the wide input or the bottleneck.
    §3.4               embedding factorization: a narrow table (`embedding_size`, 128) widened to the
                       inter-block width by a kernel-3 1-D convolution over the token sequence.
Shapes: inter-block (batch, seq, hidden), intra-block (batch, seq, true_hidden), heads (batch, seq, heads, head_dim).
Module and attribute names are Hugging Face's, so parameter paths are `transformers` checkpoint keys.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from minibert.nn.attention import dot_product_attention
from minibert.nn.embeddings import Embedding
from minibert.nn.linear import Linear
from minibert.nn.norms import normalization


def trigram(x: jax.Array) -> jax.Array:
    """Concatenate each token's embedding with its neighbours': (batch, seq, e) → (batch, seq, 3e).

    Row i is [x_{i+1}, x_i, x_{i−1}], zeros beyond either end of the sequence; a Linear on it is the
    kernel-3 convolution of §3.4."""
    following = jnp.pad(x[:, 1:], ((0, 0), (0, 1), (0, 0)))   # x_{i+1}
    preceding = jnp.pad(x[:, :-1], ((0, 0), (1, 0), (0, 0)))  # x_{i−1}
    return jnp.concatenate([following, x, preceding], axis=-1)


class FactorizedEmbeddings(nnx.Module):
    """E = Dropout(norm(W·trigram(word[ids]) + b + position[i] + token_type[t])) (§3.4; HF `MobileBertEmbeddings`).

    input_ids (batch, seq) → (batch, seq, hidden). The word table is (vocab, embedding_size); position and
    token-type tables are already `hidden` wide. Without `trigram_input` the table is only projected, and
    only when its width differs from `hidden` (the `embedding_transformation` weights exist either way,
    as in the reference checkpoints)."""

    def __init__(self, *, vocab_size: int, embedding_size: int, hidden_size: int, max_position_embeddings: int,
                 type_vocab_size: int, trigram_input: bool, normalization_type: str, eps: float, dropout: float,
                 pad_token_id: int | None = None, init_std: float = 0.02, dtype=jnp.float32, rngs: nnx.Rngs):
        table = dict(init_std=init_std, dtype=dtype, rngs=rngs)
        self.trigram_input = trigram_input
        self.project = trigram_input or embedding_size != hidden_size
        self.word_embeddings = Embedding(vocab_size, embedding_size, padding_idx=pad_token_id, **table)
        self.position_embeddings = Embedding(max_position_embeddings, hidden_size, **table)
        self.token_type_embeddings = Embedding(type_vocab_size, hidden_size, **table)
        self.embedding_transformation = Linear((3 if trigram_input else 1) * embedding_size, hidden_size, **table)
        self.LayerNorm = normalization(normalization_type, hidden_size, eps=eps, dtype=dtype)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, input_ids: jax.Array | None, token_type_ids: jax.Array,
                 inputs_embeds: jax.Array | None = None) -> jax.Array:
        """`inputs_embeds` (batch, seq, embedding_size), when given instead of input_ids, replaces word[input_ids]."""
        x = (self.word_embeddings(input_ids) if inputs_embeds is None  # (batch, seq, embedding_size)
             else inputs_embeds.astype(self.word_embeddings.dtype))
        if self.trigram_input:
            x = trigram(x)                                         # (batch, seq, 3·embedding_size)
        if self.project:
            x = self.embedding_transformation(x)                   # (batch, seq, hidden)
        positions = jnp.arange(token_type_ids.shape[1])[None, :]
        x = x + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class BottleneckProjection(nnx.Module):
    """norm(x W + b): an input bottleneck, (batch, seq, hidden) → (batch, seq, true_hidden) (HF `BottleneckLayer`).
    `use_bias=False`: no b, and no β in a LayerNorm (Flex's `bias`)."""

    def __init__(self, in_features: int, out_features: int, *, normalization_type: str, eps: float,
                 use_bias: bool = True, init_std: float = 0.02, dtype=jnp.float32, rngs: nnx.Rngs):
        self.dense = Linear(in_features, out_features, use_bias=use_bias, init_std=init_std, dtype=dtype, rngs=rngs)
        self.LayerNorm = normalization(normalization_type, out_features, eps=eps, use_bias=use_bias, dtype=dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.LayerNorm(self.dense(x))


class Bottleneck(nnx.Module):
    """The block's inputs from the wide feature map x (batch, seq, hidden) (§3.1; HF `Bottleneck`).

    Returns (query_key, value, residual): the tensor queries and keys are computed from, the tensor values
    are computed from, and the residual of the attention sublayer, which is always `input(x)`, true_hidden
    wide. Where queries and keys come from:
      - `use_bottleneck_attention`: all three are `input(x)` (values true_hidden wide);
      - else `key_query_shared_bottleneck`: queries and keys from a second projection `attention(x)`,
        values from x itself (hidden wide) — MobileBERT's published setting;
      - else: queries, keys and values from x (only possible when hidden == true_hidden).
    The `attention` projection exists whenever `key_query_shared_bottleneck` is set, also when
    `use_bottleneck_attention` leaves it unused, as in the reference checkpoints."""

    def __init__(self, hidden_size: int, bottleneck_size: int, *, use_bottleneck_attention: bool,
                 key_query_shared_bottleneck: bool, normalization_type: str, eps: float, init_std: float = 0.02,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        projection = dict(normalization_type=normalization_type, eps=eps, init_std=init_std, dtype=dtype, rngs=rngs)
        self.use_bottleneck_attention = use_bottleneck_attention
        self.input = BottleneckProjection(hidden_size, bottleneck_size, **projection)
        self.attention = (BottleneckProjection(hidden_size, bottleneck_size, **projection)
                          if key_query_shared_bottleneck else None)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        narrow = self.input(x)
        if self.use_bottleneck_attention:
            return narrow, narrow, narrow
        if self.attention is not None:
            return self.attention(x), x, narrow
        return x, x, narrow


class BottleneckSelfAttention(nnx.Module):
    """Multi-head attention whose queries/keys and values come from different tensors (HF `MobileBertSelfAttention`).

    Q = query_key W_Q, K = query_key W_K (query_key: (batch, seq, true_hidden)); V = value W_V (value:
    (batch, seq, value_size), value_size = hidden or true_hidden); heads of head_dim = true_hidden / heads.
    `mask` (bool, broadcasting to (batch, heads, q_seq, k_seq)) says which keys each query sees. Returns the
    concatenated heads (batch, seq, true_hidden), before the output projection. `attention_implementation`
    ("reference" or "fused") is switched by `minibert.nn.attention.set_attention_implementation`."""

    def __init__(self, bottleneck_size: int, value_size: int, num_heads: int, *, dropout: float,
                 init_std: float = 0.02, dtype=jnp.float32, rngs: nnx.Rngs):
        if bottleneck_size % num_heads:
            raise ValueError(f"attention width {bottleneck_size} is not a multiple of num_attention_heads {num_heads}")
        self.num_heads = num_heads
        self.attention_implementation = "reference"
        self.record_attention = False
        linear = dict(init_std=init_std, dtype=dtype, rngs=rngs)
        self.query = Linear(bottleneck_size, bottleneck_size, **linear)
        self.key = Linear(bottleneck_size, bottleneck_size, **linear)
        self.value = Linear(value_size, bottleneck_size, **linear)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, query_key: jax.Array, value: jax.Array, mask: jax.Array | None) -> jax.Array:
        split = lambda t: t.reshape(*t.shape[:-1], self.num_heads, -1)  # (b, s, h·d) → (b, s, h, d)
        q, k, v = split(self.query(query_key)), split(self.key(query_key)), split(self.value(value))
        out = dot_product_attention(q, k, v, dropout=self.dropout, mask=mask,  # softmax(q kᵀ/√d, masked) v
                                    implementation=self.attention_implementation, recorder=self)
        return out.reshape(*query_key.shape[:-1], -1)


class ResidualProjection(nnx.Module):
    """norm(residual + Dropout(h W + b)): a post-norm sublayer output, (batch, seq, in) → (batch, seq, out).

    With `out` = hidden it is the output bottleneck that widens a block's result back to the inter-block
    width (§3.1; HF `OutputBottleneck`); inside the block it closes the attention and FFN sublayers
    (HF `MobileBertSelfOutput`, `FFNOutput`). `dropout=0.0` where the reference applies none; `use_bias=False`: no b,
    and no β in a LayerNorm."""

    def __init__(self, in_features: int, out_features: int, *, normalization_type: str, eps: float, dropout: float,
                 use_bias: bool = True, init_std: float = 0.02, dtype=jnp.float32, rngs: nnx.Rngs):
        self.dense = Linear(in_features, out_features, use_bias=use_bias, init_std=init_std, dtype=dtype, rngs=rngs)
        self.LayerNorm = normalization(normalization_type, out_features, eps=eps, use_bias=use_bias, dtype=dtype)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, h: jax.Array, residual: jax.Array) -> jax.Array:
        return self.LayerNorm(residual + self.dropout(self.dense(h)))


class BottleneckOutput(ResidualProjection):
    """The block's last sublayer and, with a bottleneck, the output projection (HF `MobileBertOutput`).

    y = norm(residual + Dropout(h W + b)), (batch, seq, intermediate) → (batch, seq, true_hidden); then, when
    `bottleneck_out` is given, out = bottleneck(y, block_input) = norm(block_input + Dropout(y W' + b')),
    (batch, seq, hidden): the residual around the whole block is at the inter-block width."""

    def __init__(self, in_features: int, out_features: int, *, bottleneck_out: int | None, normalization_type: str,
                 eps: float, bottleneck_eps: float, dropout: float, init_std: float = 0.02, dtype=jnp.float32,
                 rngs: nnx.Rngs):
        common = dict(normalization_type=normalization_type, init_std=init_std, dtype=dtype, rngs=rngs)
        super().__init__(in_features, out_features, eps=eps, dropout=0.0 if bottleneck_out else dropout, **common)
        self.bottleneck = (ResidualProjection(out_features, bottleneck_out, eps=bottleneck_eps, dropout=dropout,
                                              **common) if bottleneck_out else None)

    def __call__(self, h: jax.Array, residual: jax.Array, block_input: jax.Array) -> jax.Array:
        y = super().__call__(h, residual)
        return y if self.bottleneck is None else self.bottleneck(y, block_input)
