"""Linear layer with PyTorch's weight layout.

The weight is stored as `(out_features, in_features)`, exactly as `torch.nn.Linear` stores it, so that
a parameter's path in a minibert module *is* its key in a Hugging Face checkpoint, with the same shape:
loading and saving need no transposes. Parameters are float32; `dtype` is the compute type.
"""

import jax
import jax.numpy as jnp
from flax import nnx


class Linear(nnx.Module):
    """y = x Wᵀ + b, for x of shape (..., in_features)."""

    def __init__(self, in_features: int, out_features: int, *, use_bias: bool = True, init_std: float = 0.02,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        self.weight = nnx.Param(init_std * jax.random.normal(rngs.params(), (out_features, in_features), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((out_features,), jnp.float32)) if use_bias else None
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jnp.einsum("...i,oi->...o", x.astype(self.dtype), self.weight[...].astype(self.dtype))
        if self.bias is not None:
            y = y + self.bias[...].astype(self.dtype)
        return y
