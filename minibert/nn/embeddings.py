"""Input embeddings: token + absolute position + segment (token type), then LayerNorm and dropout.

BERT (Devlin et al., 2019, §3.2, Figure 2): the input representation of token i is
    E_i = LayerNorm(word[input_ids_i] + position[i] + token_type[token_type_ids_i])
Shapes: input_ids (batch, seq) → (batch, seq, embedding_size).
Position i is the token's index, or what `position_ids` says: RoBERTa's count from padding_idx + 1
(`offset_position_ids`, fairseq's `make_positions`). Without a position table (`max_position_embeddings` 0: the
positions are ALiBi's or RoPE's, in attention) or a token-type table (`type_vocab_size` 0) the sum has those terms
fewer: E_i = LayerNorm(word[x_i] + token_type[t_i]) is MosaicBERT's (Portes et al. 2023, §2.1), LayerNorm(word[x_i])
ModernBERT's (Warner et al. 2024, §2.1.1).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from minibert.nn.linear import Linear
from minibert.nn.norms import normalization


class Embedding(nnx.Module):
    """A lookup table of shape (num_embeddings, features), named `weight` as in PyTorch.

    With `padding_idx`, looking up the padding token passes no gradient to its row (PyTorch's
    `nn.Embedding(padding_idx=...)`); the row still learns through other uses of the table (a tied decoder)."""

    def __init__(self, num_embeddings: int, features: int, *, padding_idx: int | None = None, init_std: float = 0.02,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        self.weight = nnx.Param(init_std * jax.random.normal(rngs.params(), (num_embeddings, features), jnp.float32))
        self.padding_idx = padding_idx
        self.dtype = dtype

    def __call__(self, ids: jax.Array) -> jax.Array:
        table = self.weight[...]
        if self.padding_idx is not None:
            table = table.at[self.padding_idx].set(jax.lax.stop_gradient(table[self.padding_idx]))
        return jnp.take(table, ids, axis=0).astype(self.dtype)


def offset_position_ids(input_ids: jax.Array, padding_idx: int) -> jax.Array:
    """fairseq's positions (Liu et al. 2019, RoBERTa): real tokens count from padding_idx + 1, pads stay at
    padding_idx. With m_i = [x_i ≠ pad]: p_i = m_i · Σ_{j≤i} m_j + padding_idx. (batch, seq) → (batch, seq)."""
    real = (input_ids != padding_idx).astype(jnp.int32)
    return jnp.cumsum(real, axis=1) * real + padding_idx


class Embeddings(nnx.Module):
    """word + position + token type embeddings → LayerNorm → dropout (HF `BertEmbeddings`).

    `max_position_embeddings` / `type_vocab_size` 0: no such table (and no such term). The norm is the one
    `norm_type` names (nn/norms.py `normalization`: LayerNorm, its bias only with `norm_bias`, or NoNorm), under
    HF's name `LayerNorm` whichever it is."""

    def __init__(self, *, vocab_size: int, embedding_size: int, max_position_embeddings: int, type_vocab_size: int,
                 layer_norm_eps: float, dropout: float, pad_token_id: int | None = None, norm_type: str = "layer_norm",
                 norm_bias: bool = True, init_std: float = 0.02, dtype=jnp.float32, rngs: nnx.Rngs):
        table = dict(init_std=init_std, dtype=dtype, rngs=rngs)
        self.word_embeddings = Embedding(vocab_size, embedding_size, padding_idx=pad_token_id, **table)
        self.position_embeddings = (Embedding(max_position_embeddings, embedding_size, **table)
                                    if max_position_embeddings else None)
        self.token_type_embeddings = Embedding(type_vocab_size, embedding_size, **table) if type_vocab_size else None
        self.LayerNorm = normalization(norm_type, embedding_size, eps=layer_norm_eps, use_bias=norm_bias, dtype=dtype)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, input_ids: jax.Array | None, token_type_ids: jax.Array,
                 inputs_embeds: jax.Array | None = None, position_ids: jax.Array | None = None) -> jax.Array:
        """`inputs_embeds` (batch, seq, embedding_size), when given instead of input_ids, replaces word[input_ids];
        `position_ids` (batch, seq), when given, replaces 0, 1, …, seq − 1."""
        words = (self.word_embeddings(input_ids) if inputs_embeds is None
                 else inputs_embeds.astype(self.word_embeddings.dtype))
        x = words
        if self.position_embeddings is not None:
            positions = jnp.arange(token_type_ids.shape[1])[None, :] if position_ids is None else position_ids
            x = x + self.position_embeddings(positions)
        if self.token_type_embeddings is not None:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class EmbeddingProjection(Linear):
    """x Wᵀ + b from the embedding width E to the encoder's width H when they differ, else x itself (no parameters:
    the reference then has no `embeddings_project`). A vocab × E table and this E × H map replace a vocab × H table
    (O(V·H) → O(V·E + E·H), Lan et al. 2020, ALBERT §3.1); ELECTRA (Clark et al. 2020, §3.2) and ConvBERT embed
    this way. (batch, seq, E) → (batch, seq, H)."""

    def __init__(self, embedding_size: int, hidden_size: int, *, use_bias: bool = True, init_std: float = 0.02,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        if embedding_size == hidden_size:
            self.weight = self.bias = None
            self.dtype = dtype
        else:
            super().__init__(embedding_size, hidden_size, use_bias=use_bias, init_std=init_std, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return x if self.weight is None else super().__call__(x)
