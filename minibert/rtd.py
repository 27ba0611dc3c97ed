"""Replaced token detection: ELECTRA's pretraining objective (Clark et al., 2020, §2).

Given an input whose masked positions m hold [MASK] (x^masked) and the original tokens there (the MLM labels):
    x̂_i ~ p_G(x_i | x^masked)           for i ∈ m   (sampled from the generator's softmax, no gradient)
    x^corrupt = REPLACE(x, m, x̂)
    label_t  = 1[x^corrupt_t ≠ x_t]                  (a sample equal to the original counts as original)
    L_MLM    = E[ Σ_{i∈m} −log p_G(x_i | x^masked) ]                       (mean over masked positions)
    L_Disc   = E[ Σ_t −label_t log D(x^corrupt, t) − (1 − label_t) log(1 − D(x^corrupt, t)) ]
                                                                           (mean over attended tokens)
    loss     = L_MLM + λ L_Disc,  λ = 50          (§2, the combined loss; `disc_weight` in the original code)
The discriminator loss is not back-propagated through the generator: sampling is discrete, and the logits
are sampled under `stop_gradient`. Both models are any callables `model(ids, attention_mask=...,
token_type_ids=...)` returning an output with `.logits` (minibert's `ElectraForMaskedLM` and
`ElectraForPreTraining`; see `ElectraPretrainer` for the embeddings they share).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from minibert import losses

RTD_WEIGHT = 50.0  # λ: the paper's pretraining setting (`disc_weight` in the original code)


class RTDLosses(NamedTuple):
    total: jax.Array             # L_MLM + λ L_Disc, scalar
    mlm: jax.Array               # the generator's masked-LM loss, scalar
    rtd: jax.Array               # the discriminator's replaced-token-detection loss, scalar
    generator_logits: jax.Array  # (batch, seq, vocab)

    @property
    def loss(self) -> jax.Array:  # what the training loop minimises
        return self.total

    @property
    def logits(self) -> jax.Array:  # what the training loop scores masked-token accuracy on
        return self.generator_logits


def sample_replacements(generator_logits: jax.Array, input_ids: jax.Array, labels: jax.Array,
                        key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Corrupt the masked positions with samples from the generator.

    generator_logits (batch, seq, vocab); input_ids (batch, seq) masked ids; labels (batch, seq), the original
    token at masked positions and -100 elsewhere. Returns the corrupted ids (batch, seq) — samples at masked
    positions, input_ids elsewhere — and the discriminator's labels (batch, seq) int32, 1 = replaced."""
    masked = labels != losses.IGNORE_INDEX
    sampled = jax.random.categorical(key, jax.lax.stop_gradient(generator_logits.astype(jnp.float32)), axis=-1)
    corrupted = jnp.where(masked, sampled, input_ids)                       # x^corrupt = REPLACE(x, m, x̂)
    original = jnp.where(masked, labels, input_ids)                         # x
    return corrupted, (corrupted != original).astype(jnp.int32)             # label_t = 1[x^corrupt_t ≠ x_t]


def electra_loss(generator, discriminator, input_ids: jax.Array, labels: jax.Array, attention_mask: jax.Array,
                 key: jax.Array, *, token_type_ids: jax.Array | None = None,
                 rtd_weight: float = RTD_WEIGHT) -> RTDLosses:
    """One evaluation of the ELECTRA objective: (total, mlm, rtd) with total = mlm + rtd_weight · rtd.

    input_ids (batch, seq) already masked; labels (batch, seq) original tokens at the masked positions,
    -100 elsewhere; attention_mask (batch, seq), 1 = real token; key: a PRNG key for the samples."""
    generator_logits = generator(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
    mlm = losses.masked_lm_loss(generator_logits, labels)                   # L_MLM
    corrupted, replaced = sample_replacements(generator_logits, input_ids, labels, key)
    logits = discriminator(corrupted, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
    disc = losses.replaced_token_detection_loss(logits, replaced, attention_mask)   # L_Disc
    return RTDLosses(total=mlm + rtd_weight * disc, mlm=mlm, rtd=disc, generator_logits=generator_logits)
