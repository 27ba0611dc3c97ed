"""Normalization layers.

LayerNorm (Ba et al., 2016): y = (x − mean) / sqrt(var + eps) · weight + bias, statistics over the last
axis, always computed in float32 (also when the model computes in bfloat16), output in the compute dtype.
"""

import jax
import jax.numpy as jnp
from flax import nnx


class LayerNorm(nnx.Module):
    """LayerNorm over the last axis of (..., features); `weight`/`bias` named as in PyTorch."""

    def __init__(self, features: int, *, eps: float = 1e-12, use_bias: bool = True, dtype=jnp.float32):
        self.weight = nnx.Param(jnp.ones((features,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((features,), jnp.float32)) if use_bias else None
        self.eps = eps
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(jnp.float32)
        mean = x.mean(-1, keepdims=True)
        var = jnp.square(x - mean).mean(-1, keepdims=True)
        y = (x - mean) * jax.lax.rsqrt(var + self.eps) * self.weight[...]
        if self.bias is not None:
            y = y + self.bias[...]
        return y.astype(self.dtype)
