"""Knowledge distillation: a student learns from a frozen teacher's feature maps, attention maps and predictions.

MobileBERT (Sun et al., 2020) trains its thin student from a wide teacher, layer by layer:
    §3.5  feature map transfer   L_FMT^ℓ = 1/(T N) Σ_t Σ_n (H^tr_{t,ℓ,n} − H^st_{t,ℓ,n})²
          attention transfer     L_AT^ℓ  = 1/(T A) Σ_t Σ_a D_KL(a^tr_{t,ℓ,a} ‖ a^st_{t,ℓ,a})
          pre-training distillation  L_PD = α L_MLM + (1 − α) L_KD
    §3.6  progressive knowledge transfer: L stages; stage ℓ trains layer ℓ on L_FMT^ℓ + L_AT^ℓ, lower layers frozen
Hinton et al. (2015, "Distilling the Knowledge in a Neural Network", §2): soft targets at temperature T,
    L_KD = T² · D_KL(softmax(z^tr / T) ‖ softmax(z^st / T))
— the same loss distils MLM logits (pretraining) and a task head's logits (fine-tuning, "soft labels").
DistilBERT (Sanh et al., 2019, §3) distils a student of the teacher's width and half its depth, initialised from
every other teacher layer (models/distilbert.py `from_teacher`), with the triple loss
    L = α_ce L_KD + α_mlm L_MLM + α_cos L_cos,   L_cos = 1 − cos(h^st, h^tr) on the last hidden states
(α = 5, 2, 1 and T = 2 in the authors' training script).

Teacher and student may differ in family, width, depth and heads (e.g. a BERT teacher, a MobileBERT student):
- depth: student layer ℓ learns from teacher layer g(ℓ) = round(ℓ · L_tr / L_st) (TinyBERT's uniform map,
  Jiao et al. 2020 §3.3);
- width: when the hidden sizes differ, a learned linear map W_ℓ (student → teacher width) per layer (TinyBERT
  Eq. 7); MobileBERT needs none (its inter-block width equals its teacher's);
- feature maps are compared after a parameter-free layer normalisation over the width, so neither the scale of
  the teacher's activations nor a family's pre-/post-norm placement dominates the loss;
- heads: per head when the counts match (MobileBERT), else the heads' average distributions are compared.
Tensors: hidden states (batch, seq, width); attention maps (batch, heads, q_seq, k_seq); attention_mask
(batch, seq), 1 = real token — only real tokens (queries) count.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from minibert.nn.attention import forward_with_attention_maps
from minibert.nn.linear import Linear
from minibert.training.batch import Batch, model_inputs

TARGETS = ("labels", "next_sentence_label")      # the student's loss needs them; the teacher's outputs do not


def _masked_mean(values: jax.Array, keep: jax.Array) -> jax.Array:
    return jnp.sum(jnp.where(keep, values, 0.0)) / jnp.maximum(keep.sum(), 1)


def normalize(h: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Layer normalisation without parameters over the last axis: (h − mean) / √(var + ε)."""
    h = h.astype(jnp.float32)
    mean = h.mean(-1, keepdims=True)
    return (h - mean) * jax.lax.rsqrt(jnp.mean((h - mean) ** 2, -1, keepdims=True) + eps)


def feature_map_loss(student: jax.Array, teacher: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """L_FMT: mean over real tokens and width of (norm(H^tr) − norm(H^st))²; (batch, seq, width) each."""
    squared = jnp.mean((normalize(teacher) - normalize(student)) ** 2, axis=-1)  # (batch, seq)
    return _masked_mean(squared, attention_mask > 0)


def attention_transfer_loss(student: jax.Array, teacher: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """L_AT: mean over real queries t and heads a of D_KL(a^tr_ta ‖ a^st_ta) = Σ_k p^tr log(p^tr / p^st);
    (batch, heads, q_seq, k_seq) each (heads may differ: then their mean distributions are compared)."""
    if student.shape[1] != teacher.shape[1]:
        student, teacher = student.mean(1, keepdims=True), teacher.mean(1, keepdims=True)
    p_tr, p_st = teacher.astype(jnp.float32), student.astype(jnp.float32)
    tiny = jnp.finfo(jnp.float32).tiny                     # masked keys have p = 0 on both sides: 0 · log 0 = 0
    kl = jnp.sum(jnp.where(p_tr > 0, p_tr * (jnp.log(jnp.maximum(p_tr, tiny)) - jnp.log(jnp.maximum(p_st, tiny))),
                           0.0), axis=-1)                  # (batch, heads, q_seq)
    return _masked_mean(kl.mean(1), attention_mask > 0)


def cosine_loss(student: jax.Array, teacher: jax.Array, attention_mask: jax.Array, eps: float = 1e-8) -> jax.Array:
    """L_cos: mean over real tokens of 1 − cos(h^st, h^tr) = 1 − h^st·h^tr / (‖h^st‖ ‖h^tr‖) (Sanh et al. 2019, §3:
    aligns the directions of the two models' hidden states); (batch, seq, width) each, the same width."""
    s, t = student.astype(jnp.float32), teacher.astype(jnp.float32)
    norms = jnp.sqrt((jnp.sum(s * s, -1) + eps) * (jnp.sum(t * t, -1) + eps))       # as torch's CosineEmbeddingLoss
    return _masked_mean(1.0 - jnp.sum(s * t, -1) / norms, attention_mask > 0)


def soft_target_loss(student_logits: jax.Array, teacher_logits: jax.Array, temperature: float = 1.0,
                     where: jax.Array | None = None) -> jax.Array:
    """L_KD = T² · D_KL(softmax(z^tr/T) ‖ softmax(z^st/T)), averaged over the rows `where` is true (all rows
    when None). Logits (..., classes); `where` (...) — e.g. the masked positions (labels ≠ -100)."""
    log_p_tr = jax.nn.log_softmax(teacher_logits.astype(jnp.float32) / temperature, axis=-1)
    log_p_st = jax.nn.log_softmax(student_logits.astype(jnp.float32) / temperature, axis=-1)
    kl = jnp.sum(jnp.exp(log_p_tr) * (log_p_tr - log_p_st), axis=-1)
    keep = jnp.ones(kl.shape, bool) if where is None else where
    return temperature ** 2 * _masked_mean(kl, keep)


def layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """g(ℓ) for ℓ = 1..L_st: the teacher layer (1-based, an index into `hidden_states`) each student layer learns."""
    return [max(1, round(layer * teacher_layers / student_layers)) for layer in range(1, student_layers + 1)]


class Distiller(nnx.Module):
    """A trainable student beside a frozen teacher (always in eval mode), both seeing the same batch.

    `projections[ℓ]` maps the student's layer-ℓ hidden state to the teacher's width (None when equal). Calling it
    runs both models and returns (student output, student attention maps, teacher output, teacher attention
    maps); the maps are recorded only after `nn.attention.record_attention_maps(distiller)`. The teacher's outputs carry no gradient."""

    def __init__(self, teacher: nnx.Module, student: nnx.Module, *, rngs: nnx.Rngs):
        self.teacher, self.student = teacher, student
        self.teacher_layers = layer_map(student.config.num_hidden_layers, teacher.config.num_hidden_layers)
        width_st, width_tr = student.config.hidden_size, teacher.config.hidden_size
        self.projections = (nnx.List([Linear(width_st, width_tr, rngs=rngs) for _ in self.teacher_layers])
                            if width_st != width_tr else None)

    def train(self, **attributes):
        super().train(**attributes)
        self.teacher.eval()                            # no dropout in the teacher's targets

    def __call__(self, batch: Batch | dict) -> tuple:
        """Each model gets the batch fields it declares (`model_inputs`); the teacher no targets."""
        teacher_inputs = {k: v for k, v in model_inputs(self.teacher, batch).items() if k not in TARGETS}
        teacher, teacher_maps = forward_with_attention_maps(self.teacher, **teacher_inputs, output_hidden_states=True)
        student, student_maps = forward_with_attention_maps(self.student, **model_inputs(self.student, batch),
                                                            output_hidden_states=True)
        return student, student_maps, *jax.lax.stop_gradient((teacher, teacher_maps))

    def transfer_loss(self, student, student_maps, teacher, teacher_maps, attention_mask: jax.Array,
                      layers: list[int] | None = None) -> jax.Array:
        """Σ over student layers ℓ (1-based; all when None) of L_FMT^ℓ + L_AT^ℓ (L_AT when maps were recorded)."""
        total = 0.0
        for layer in layers or range(1, len(self.teacher_layers) + 1):
            target = self.teacher_layers[layer - 1]
            hidden = student.hidden_states[layer]
            if self.projections is not None:
                hidden = self.projections[layer - 1](hidden)                 # W_ℓ: student → teacher width
            total = total + feature_map_loss(hidden, teacher.hidden_states[target], attention_mask)
            if student_maps and teacher_maps:
                total = total + attention_transfer_loss(student_maps[layer - 1], teacher_maps[target - 1],
                                                        attention_mask)
        return total
