"""Fine-tuning losses, in float32, as Hugging Face's task heads compute them.

Sequence classification (Devlin et al., 2019, §4.1) picks its loss from the config's `problem_type`, or, when
that is unset, from the labels: one output → regression (mean squared error); integer labels →
single-label cross-entropy; float labels (batch, num_labels) → multi-label binary cross-entropy.
Token classification and multiple choice are cross-entropy (§4.3, §4.4). Extractive question answering
(§4.2) averages the cross-entropies of the start and the end position over the sequence; a position
outside the sequence is clamped to `seq` and ignored, as in `transformers`.
"""

import jax
import jax.numpy as jnp

from minibert.losses import cross_entropy

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


def mean_squared_error(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """mean((ŷ − y)²) over every element; (batch, 1) predictions are compared with (batch,) targets."""
    predictions = predictions.astype(jnp.float32)
    if predictions.shape[-1:] == (1,) and targets.ndim == predictions.ndim - 1:
        predictions = predictions[..., 0]
    return jnp.mean(jnp.square(predictions - targets.astype(jnp.float32)))


def binary_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """mean(−y log σ(x) − (1 − y) log(1 − σ(x))) over every element = mean((1 − y) x − log σ(x))."""
    x = logits.astype(jnp.float32)
    return jnp.mean((1.0 - targets.astype(jnp.float32)) * x - jax.nn.log_sigmoid(x))


def problem_type_of(problem_type: str | None, num_labels: int, labels: jax.Array) -> str:
    """The config's `problem_type`, or the one Hugging Face infers from the head size and the labels' dtype."""
    if problem_type is not None:
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type {problem_type!r} is not one of {PROBLEM_TYPES}")
        return problem_type
    if num_labels == 1:
        return "regression"
    return "single_label_classification" if jnp.issubdtype(labels.dtype, jnp.integer) else "multi_label_classification"


def sequence_classification_loss(logits: jax.Array, labels: jax.Array, problem_type: str | None) -> jax.Array:
    """logits (batch, num_labels); labels (batch,) class ids, (batch,) targets, or (batch, num_labels) 0/1."""
    kind = problem_type_of(problem_type, logits.shape[-1], labels)
    if kind == "regression":
        return mean_squared_error(logits, labels)
    if kind == "multi_label_classification":
        return binary_cross_entropy(logits, labels)
    return cross_entropy(logits, labels)


def span_loss(start_logits: jax.Array, end_logits: jax.Array, start_positions: jax.Array,
              end_positions: jax.Array) -> jax.Array:
    """(CE(start) + CE(end)) / 2; logits (batch, seq), positions (batch,). Positions are clamped to [0, seq]
    and `seq` (outside the window) is ignored."""
    seq = start_logits.shape[-1]
    start = jnp.clip(start_positions.reshape(-1), 0, seq)
    end = jnp.clip(end_positions.reshape(-1), 0, seq)
    return (cross_entropy(start_logits, start, ignore_index=seq) + cross_entropy(end_logits, end, ignore_index=seq)) / 2
