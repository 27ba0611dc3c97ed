"""Rotary position embeddings (RoPE).

Su et al., "RoFormer: Enhanced Transformer with Rotary Position Embedding" (2021), §3.2–3.4. A query or key
at position m is rotated, one 2-D plane per frequency, by the angle m·θ_i (Eq. 34):

    θ_i = theta^(−2i/d),   i = 0 … d/2 − 1                                   (inverse frequencies, float32)
    f(x, m) = x ∘ cos(m θ) + rotate_half(x) ∘ sin(m θ)                         (Eq. 34, rotate-half layout)

so that the score ⟨f(q, m), f(k, n)⟩ depends on the positions only through m − n (Eq. 16). The paper pairs
neighbouring dimensions (x_{2i}, x_{2i+1}); this is the "rotate-half" (GPT-NeoX) layout used by ModernBERT
and Hugging Face, which pairs dimension i with i + d/2: the same rotation of a permuted vector.

Shapes: q or k (batch, seq, heads, head_dim); positions (batch, seq) integers. Positions are an input, not
`arange(seq)`, so that documents packed into one row each start again at 0.
"""

import jax
import jax.numpy as jnp


def inverse_frequencies(head_dim: int, theta: float) -> jax.Array:
    """θ_i = theta^(−2i/d) for i = 0 … d/2 − 1, in float32: (head_dim // 2,)."""
    if head_dim % 2:
        raise ValueError(f"rotary embeddings need an even head_dim, got {head_dim}")
    return 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))


def rotary_tables(positions: jax.Array, head_dim: int, theta: float) -> tuple[jax.Array, jax.Array]:
    """cos(m θ) and sin(m θ), each angle repeated for both halves: (batch, seq, head_dim) float32 each."""
    angles = positions.astype(jnp.float32)[..., None] * inverse_frequencies(head_dim, theta)  # m θ_i
    angles = jnp.concatenate([angles, angles], axis=-1)
    return jnp.cos(angles), jnp.sin(angles)


def rotate_half(x: jax.Array) -> jax.Array:
    """(x₁, x₂) → (−x₂, x₁) over the two halves of the last axis: the 90° turn of every plane."""
    x1, x2 = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([-x2, x1], axis=-1)


def apply_rotary(x: jax.Array, positions: jax.Array, theta: float) -> jax.Array:
    """f(x, m) = x ∘ cos(m θ) + rotate_half(x) ∘ sin(m θ), computed in float32, returned in x's dtype.

    x: (batch, seq, heads, head_dim); positions: (batch, seq) (or (1, seq), broadcast over the batch)."""
    if positions.shape[-1] != x.shape[1]:
        raise ValueError(f"positions cover {positions.shape[-1]} tokens but x has seq length {x.shape[1]}")
    cos, sin = rotary_tables(positions, x.shape[-1], theta)
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]  # broadcast over heads
    x32 = x.astype(jnp.float32)
    return (x32 * cos + rotate_half(x32) * sin).astype(x.dtype)  # Eq. 34
