"""Output heads on top of an encoder's hidden states (Devlin et al., 2019, §3.1 and Appendix A.1).

Attribute names follow Hugging Face (`cls.predictions.transform.dense`, `cls.seq_relationship`, ...) so that
a module's parameter paths are the checkpoint's keys.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from minibert.nn.activations import activation
from minibert.nn.linear import Linear
from minibert.nn.norms import LayerNorm
from minibert.nn.tied_decoder import TiedDecoder


class Pooler(nnx.Module):
    """tanh(W h_[CLS] + b): (batch, seq, hidden) → (batch, hidden), the sentence-level representation."""

    def __init__(self, hidden_size: int, *, init_std: float = 0.02, dtype=jnp.float32, rngs: nnx.Rngs):
        self.dense = Linear(hidden_size, hidden_size, init_std=init_std, dtype=dtype, rngs=rngs)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        return jnp.tanh(self.dense(hidden[:, 0]))


class PredictionHeadTransform(nnx.Module):
    """LayerNorm(act(W h + b)): the MLM head's transform, (batch, seq, hidden) → (batch, seq, hidden)."""

    def __init__(self, hidden_size: int, act: str, *, eps: float, init_std: float = 0.02, dtype=jnp.float32,
                 rngs: nnx.Rngs):
        self.dense = Linear(hidden_size, hidden_size, init_std=init_std, dtype=dtype, rngs=rngs)
        self.act = activation(act)
        self.LayerNorm = LayerNorm(hidden_size, eps=eps, dtype=dtype)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        return self.LayerNorm(self.act(self.dense(hidden)))


class MaskedLMHead(nnx.Module):
    """logits = transform(h) Eᵀ + bias, where E is the word-embedding matrix (tied weights, §A.1)
    or, when `tie_word_embeddings` is false, the head's own `decoder.weight`. (batch, seq, vocab)."""

    def __init__(self, hidden_size: int, vocab_size: int, act: str, *, eps: float, tied: bool = True,
                 init_std: float = 0.02, dtype=jnp.float32, rngs: nnx.Rngs):
        self.transform = PredictionHeadTransform(hidden_size, act, eps=eps, init_std=init_std, dtype=dtype, rngs=rngs)
        self.decoder = TiedDecoder(hidden_size, vocab_size, tied=tied, use_bias=False, init_std=init_std, dtype=dtype,
                                   rngs=rngs)
        self.bias = nnx.Param(jnp.zeros((vocab_size,), jnp.float32))

    def __call__(self, hidden: jax.Array, word_embeddings: jax.Array) -> jax.Array:
        h = self.transform(hidden)
        return self.decoder(h, word_embeddings) + self.bias[...].astype(h.dtype)


class PreTrainingHeads(nnx.Module):
    """The MLM head (`predictions`) and, optionally, the NSP classifier (`seq_relationship`, W p + b, 2 classes)."""

    def __init__(self, hidden_size: int, vocab_size: int, act: str, *, eps: float, tied: bool, nsp: bool,
                 init_std: float = 0.02, dtype=jnp.float32, rngs: nnx.Rngs):
        self.predictions = MaskedLMHead(hidden_size, vocab_size, act, eps=eps, tied=tied, init_std=init_std,
                                        dtype=dtype, rngs=rngs)
        self.seq_relationship = Linear(hidden_size, 2, init_std=init_std, dtype=dtype, rngs=rngs) if nsp else None


class NextSentencePredictionHead(nnx.Module):
    """`cls.seq_relationship`: W p + b on the pooled [CLS], 2 classes: the NSP head alone (HF `BertOnlyNSPHead`,
    `MobileBertOnlyNSPHead`); (batch, hidden) → (batch, 2)."""

    def __init__(self, hidden_size: int, *, init_std: float = 0.02, dtype=jnp.float32, rngs: nnx.Rngs):
        self.seq_relationship = Linear(hidden_size, 2, init_std=init_std, dtype=dtype, rngs=rngs)

    def __call__(self, pooled: jax.Array) -> jax.Array:
        return self.seq_relationship(pooled)


def select_masked(hidden: jax.Array, masked_positions: jax.Array | None, labels: jax.Array | None) -> jax.Array:
    """The hidden states where the masked-LM loss is scored, for a *sparse* MLM head.

    The vocabulary projection is the costliest per-token matmul of pretraining (BERT-base: 768 × 30522 per
    token), yet only the masked tokens (15%) are scored. Gathering them first runs the head (transform and
    decoder) on (batch, n_predictions) positions instead of (batch, seq), with the same loss: the positions
    not gathered carry label -100 and add nothing to it, nor to its gradient.

    hidden (batch, seq, d); masked_positions (batch, n_predictions) int in [0, seq), or None (dense head:
    `hidden` returned as is); labels, when given with positions, (batch, n_predictions), -100 in empty slots.
    → (batch, n_predictions, d)."""
    if masked_positions is None:
        return hidden
    if masked_positions.ndim != 2 or masked_positions.shape[0] != hidden.shape[0]:
        raise ValueError(f"masked_positions must have shape (batch, n_predictions) with batch {hidden.shape[0]}, "
                         f"got {masked_positions.shape}")
    if labels is not None and labels.shape != masked_positions.shape:
        raise ValueError(f"with masked_positions {masked_positions.shape}, labels are those positions' labels and "
                         f"must have the same shape, got {labels.shape}")
    return jnp.take_along_axis(hidden, masked_positions.astype(jnp.int32)[..., None], axis=1)
