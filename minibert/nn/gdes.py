"""Gradient-disentangled embedding sharing (GDES): DeBERTa-v3's way for a discriminator to share its generator's
token embeddings.

He, Gao & Chen, "DeBERTaV3: Improving DeBERTa using ELECTRA-Style Pre-Training with Gradient-Disentangled Embedding
Sharing" (ICLR 2023), §3.2. ELECTRA shares one table E between its generator (trained by MLM) and its discriminator
(trained by replaced-token detection), so both losses pull on E, in opposite directions: MLM draws semantically
close tokens together, RTD pushes them apart (the "tug-of-war", §3.1). GDES keeps the sharing but lets only MLM
move the shared table; the discriminator learns a residual on top of it:
    E_D = sg(E_G) + E_Δ          (Eq. 7; sg = stop-gradient, E_Δ initialised to zero)
so ∂L_RTD reaches E_Δ only, and E_G is updated by ∂L_MLM only. After pretraining E_D is computed once and saved as
the discriminator's own table (`merged`); E_Δ is discarded.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from minibert.nn.embeddings import Embedding


class GradientDisentangledEmbedding(nnx.Module):
    """The discriminator's token embeddings E_D = sg(E_G) + E_Δ over the generator's `Embedding` (the same object,
    so the two models keep one E_G): (batch, seq) ids → (batch, seq, features). The padding token's row of E_Δ gets
    no gradient from lookups, as a table with `padding_idx` would not."""

    def __init__(self, generator: Embedding):
        self.generator = generator
        self.delta = nnx.Param(jnp.zeros_like(generator.weight[...]))            # E_Δ = 0 at the start
        self.padding_idx, self.dtype = generator.padding_idx, generator.dtype

    def merged(self) -> jax.Array:
        """E_G + E_Δ, (vocab, features): the discriminator's table to save."""
        return self.generator.weight[...] + self.delta[...]

    def __call__(self, ids: jax.Array) -> jax.Array:
        delta = self.delta[...]
        if self.padding_idx is not None:
            delta = delta.at[self.padding_idx].set(jax.lax.stop_gradient(delta[self.padding_idx]))
        table = jax.lax.stop_gradient(self.generator.weight[...]) + delta          # E_D = sg(E_G) + E_Δ
        return jnp.take(table, ids, axis=0).astype(self.dtype)
