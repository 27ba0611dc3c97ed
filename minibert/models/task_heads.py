"""The pieces that turn an encoder's hidden states into one vector per sequence, for task heads.

Devlin et al. (2019), §4: a sentence-level task reads one vector per sequence (BERT: the pooled [CLS]) and
adds one linear layer. The families differ in how they get that vector; each piece here is one family's way,
with Hugging Face's attribute names so that parameter paths are checkpoint keys:
- `ClassificationHead` (ELECTRA, ConvBERT): out_proj(Dropout(act(dense(Dropout(h_[CLS]))))).
- `SequenceSummary` (ELECTRA and ConvBERT multiple choice, from XLM): the first, last or mean position,
  optionally projected (`summary`) and activated.
- `pool` (ModernBERT, Warner et al. 2024, §2.1): h_[CLS] or the mean over the real tokens.
Shapes: hidden (batch, seq, hidden) → (batch, hidden) or (batch, num_labels).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from minibert.nn.activations import activation
from minibert.nn.linear import Linear

SUMMARY_TYPES = ("first", "last", "mean", "cls_index")
POOLINGS = ("cls", "mean")


class ClassificationHead(nnx.Module):
    """logits = out_proj(Dropout(act(dense(Dropout(h_[CLS]))))): (batch, seq, hidden) → (batch, num_labels)."""

    def __init__(self, hidden_size: int, num_labels: int, act: str, *, dropout: float, init_std: float = 0.02,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        self.dense = Linear(hidden_size, hidden_size, init_std=init_std, dtype=dtype, rngs=rngs)
        self.act = activation(act)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.out_proj = Linear(hidden_size, num_labels, init_std=init_std, dtype=dtype, rngs=rngs)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        x = self.dropout(hidden[:, 0])
        return self.out_proj(self.dropout(self.act(self.dense(x))))


class SequenceSummary(nnx.Module):
    """Dropout_last(act(summary(Dropout_first(pick(h))))): (batch, seq, hidden) → (batch, hidden).

    `pick` is "first" (h_0), "last" (h_{seq−1}, also "cls_index" without an index — a padding position when
    the row is padded, as in the reference) or "mean" (over every position, padding included). `summary`
    is Linear(hidden, hidden) when `use_proj`, else nothing; `act` is a config activation name or None."""

    def __init__(self, hidden_size: int, *, summary_type: str, use_proj: bool, act: str | None, first_dropout: float,
                 last_dropout: float, init_std: float = 0.02, dtype=jnp.float32, rngs: nnx.Rngs):
        if summary_type not in SUMMARY_TYPES:
            raise ValueError(f"summary_type {summary_type!r} is not supported; choose from {SUMMARY_TYPES}")
        self.summary_type = summary_type
        self.summary = Linear(hidden_size, hidden_size, init_std=init_std, dtype=dtype, rngs=rngs) if use_proj else None
        self.act = activation(act) if act else None
        self.first_dropout = nnx.Dropout(first_dropout, rngs=rngs)
        self.last_dropout = nnx.Dropout(last_dropout, rngs=rngs)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        if self.summary_type == "first":
            x = hidden[:, 0]
        elif self.summary_type == "mean":
            x = hidden.mean(axis=1)
        else:
            x = hidden[:, -1]
        x = self.first_dropout(x)
        if self.summary is not None:
            x = self.summary(x)
        if self.act is not None:
            x = self.act(x)
        return self.last_dropout(x)


def pool(hidden: jax.Array, attention_mask: jax.Array, how: str, *, first_real: bool = False) -> jax.Array:
    """(batch, seq, hidden) → (batch, hidden): "cls" takes position 0 (or, with `first_real`, each row's first
    real token, for left padding), "mean" averages the real tokens: Σ_t m_t h_t / Σ_t m_t."""
    if how not in POOLINGS:
        raise ValueError(f"classifier_pooling {how!r} is not one of {POOLINGS}")
    real = attention_mask > 0                                                   # (batch, seq)
    if how == "cls":
        index = jnp.argmax(real, axis=-1) if first_real else jnp.zeros(hidden.shape[0], jnp.int32)
        return jnp.take_along_axis(hidden, index[:, None, None], axis=1)[:, 0]
    weights = real.astype(hidden.dtype)[..., None]
    return (hidden * weights).sum(axis=1) / weights.sum(axis=1)
