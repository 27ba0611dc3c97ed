"""The masked-LM output layer, its weight tied to the input embeddings.

Press & Wolf (2017), "Using the Output Embedding to Improve Language Models"; BERT (Devlin et al., 2019, §A.1):
the vocabulary projection reuses the word-embedding matrix E (vocab, features), so
    logits = h Eᵀ + b                                   (..., features) → (..., vocab)
With `tie_word_embeddings` false the layer holds its own `weight` of E's shape instead. Every family's MLM head
ends in one (BERT's `cls.predictions.decoder`, ELECTRA's and ConvBERT's `generator_lm_head`, ModernBERT's
`decoder`, ...); where a family keeps the bias beside the decoder rather than in it (BERT's `cls.predictions.bias`),
the decoder is built without one.
"""

import jax
import jax.numpy as jnp
from flax import nnx


class TiedDecoder(nnx.Module):
    """logits = h Wᵀ + b, W = the word embeddings (tied) or the own `weight` (vocab, features); `bias` (vocab,)
    with `use_bias`. Computed in `dtype`, as `Linear`. (..., features) → (..., vocab)."""

    def __init__(self, features: int, vocab_size: int, *, tied: bool, use_bias: bool = True, init_std: float = 0.02,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        self.weight = None if tied else nnx.Param(
            init_std * jax.random.normal(rngs.params(), (vocab_size, features), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((vocab_size,), jnp.float32)) if use_bias else None
        self.dtype = dtype

    def __call__(self, h: jax.Array, word_embeddings: jax.Array) -> jax.Array:
        weight = word_embeddings if self.weight is None else self.weight[...]
        logits = jnp.einsum("...d,vd->...v", h.astype(self.dtype), weight.astype(self.dtype))  # h Wᵀ
        return logits if self.bias is None else logits + self.bias[...].astype(self.dtype)
