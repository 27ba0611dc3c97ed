"""Normalization layers.

LayerNorm (Ba et al., 2016): y = (x − mean) / sqrt(var + eps) · weight + bias, statistics over the last
axis, computed in float32 (also when the model computes in bfloat16), output in the compute dtype — unless
`low_precision` is set (MosaicBERT, Portes et al. 2023, §2.1; Composer's LowPrecisionLayerNorm), which
computes it in the compute dtype: a training-speed option, not a weight (`set_low_precision_layernorm`).
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
        self.low_precision = False

    def __call__(self, x: jax.Array) -> jax.Array:
        compute = self.dtype if self.low_precision else jnp.float32
        x = x.astype(compute)
        mean = x.mean(-1, keepdims=True)
        var = jnp.square(x - mean).mean(-1, keepdims=True)
        y = (x - mean) * jax.lax.rsqrt(var + self.eps) * self.weight[...].astype(compute)
        if self.bias is not None:
            y = y + self.bias[...].astype(compute)
        return y.astype(self.dtype)


def set_low_precision_layernorm(model: nnx.Module, enabled: bool) -> None:
    """Compute every LayerNorm of `model` in its compute dtype (enabled) or in float32 (recompiles)."""
    for _, module in nnx.iter_modules(model):
        if isinstance(module, LayerNorm):
            module.low_precision = enabled


class NoNorm(nnx.Module):
    """MobileBERT's NoNorm (Sun et al., 2020, §3.3, Eq. 1): NoNorm(h) = γ ∘ h + β.

    An element-wise affine map over the last axis of (..., features): no mean, no variance, no eps. It replaces
    LayerNorm to save latency; `weight` (γ) and `bias` (β) are named as in PyTorch/Hugging Face."""

    def __init__(self, features: int, *, dtype=jnp.float32):
        self.weight = nnx.Param(jnp.ones((features,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((features,), jnp.float32))
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        return x.astype(self.dtype) * self.weight[...].astype(self.dtype) + self.bias[...].astype(self.dtype)


def normalization(kind: str, features: int, *, eps: float, use_bias: bool = True,
                  dtype=jnp.float32) -> LayerNorm | NoNorm:
    """The norm a config names (`normalization_type`): "layer_norm" (with `eps`; its β only with `use_bias`) or
    "no_norm" (which has no eps, and always its β: without it NoNorm would be a bare scale)."""
    if kind == "layer_norm":
        return LayerNorm(features, eps=eps, use_bias=use_bias, dtype=dtype)
    if kind == "no_norm":
        if not use_bias:
            raise ValueError("no_norm without a bias is not supported: NoNorm is γ ∘ h + β, its β always there")
        return NoNorm(features, dtype=dtype)
    raise ValueError(f"unknown normalization_type {kind!r}; known: layer_norm, no_norm")
