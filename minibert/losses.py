"""Pretraining and fine-tuning losses, in float32, shared by models and the training loop.

Masked LM (Devlin et al., 2019, §3.1 Task #1): cross-entropy at the masked positions only — positions
labelled -100 are ignored, as in Hugging Face. Next sentence prediction (§3.1 Task #2): cross-entropy
over two classes, 0 = "B follows A", 1 = "B is random".
"""

import jax
import jax.numpy as jnp

IGNORE_INDEX = -100


def cross_entropy(logits: jax.Array, labels: jax.Array, ignore_index: int = IGNORE_INDEX) -> jax.Array:
    """Mean −log softmax(logits)[label] over labels ≠ ignore_index; logits (..., classes), labels (...)."""
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    keep = labels != ignore_index
    picked = jnp.take_along_axis(log_probs, jnp.where(keep, labels, 0)[..., None], axis=-1)[..., 0]
    return -jnp.sum(jnp.where(keep, picked, 0.0)) / jnp.maximum(keep.sum(), 1)


def masked_lm_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """MLM loss: logits (batch, seq, vocab), labels (batch, seq) with -100 where nothing is predicted."""
    return cross_entropy(logits, labels)


def next_sentence_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """NSP loss: logits (batch, 2), labels (batch,)."""
    return cross_entropy(logits, labels)


def pretraining_loss(mlm_logits, labels, nsp_logits, next_sentence_label) -> jax.Array | None:
    """MLM + NSP (§3.1): the sum of whichever of the two has labels; None when neither has."""
    parts = []
    if labels is not None:
        parts.append(masked_lm_loss(mlm_logits, labels))
    if next_sentence_label is not None:
        parts.append(next_sentence_loss(nsp_logits, next_sentence_label))
    return sum(parts) if parts else None


def replaced_token_detection_loss(logits: jax.Array, labels: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """ELECTRA's discriminator loss (Clark et al., 2020, §2, L_Disc): binary cross-entropy with logits, averaged
    over attended tokens. logits (batch, seq); labels (batch, seq), 1 = replaced, 0 = original;
    attention_mask (batch, seq), 1 = real token.
    Per token: −y log σ(x) − (1 − y) log(1 − σ(x)) = (1 − y) x − log σ(x)."""
    x = logits.astype(jnp.float32)
    per_token = (1.0 - labels.astype(jnp.float32)) * x - jax.nn.log_sigmoid(x)
    keep = attention_mask == 1
    return jnp.sum(jnp.where(keep, per_token, 0.0)) / jnp.maximum(keep.sum(), 1)
