"""Position-wise feed-forward network and the post-LN sublayer output.

Vaswani et al. (2017), §3.3: FFN(x) = act(x W₁ + b₁) W₂ + b₂, applied to every position alike.
Post-LN residual (§3.1, as BERT uses it): out = LayerNorm(x + Dropout(Sublayer(x))).
Hugging Face splits the FFN into `intermediate` (W₁, act) and `output` (W₂, dropout, residual, LayerNorm);
the module names follow, so checkpoint keys match.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from minibert.nn.activations import activation
from minibert.nn.linear import Linear
from minibert.nn.norms import LayerNorm


class Intermediate(nnx.Module):
    """act(x W₁ + b₁): (batch, seq, hidden) → (batch, seq, intermediate)."""

    def __init__(self, hidden_size: int, intermediate_size: int, act: str, *, init_std: float = 0.02,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        self.dense = Linear(hidden_size, intermediate_size, init_std=init_std, dtype=dtype, rngs=rngs)
        self.act = activation(act)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.act(self.dense(x))


class PostNormOutput(nnx.Module):
    """LayerNorm(residual + Dropout(h W + b)): the output of a post-LN sublayer, (batch, seq, out)."""

    def __init__(self, in_features: int, out_features: int, *, eps: float, dropout: float, init_std: float = 0.02,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        self.dense = Linear(in_features, out_features, init_std=init_std, dtype=dtype, rngs=rngs)
        self.LayerNorm = LayerNorm(out_features, eps=eps, dtype=dtype)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, h: jax.Array, residual: jax.Array) -> jax.Array:
        return self.LayerNorm(residual + self.dropout(self.dense(h)))


def glu(x: jax.Array, act) -> jax.Array:
    """Gated linear unit: GLU(x) = act(x_in) ⊙ x_gate, where [x_in | x_gate] = x split in two halves along the
    last axis (Dauphin et al., 2017, Eq. 1; Shazeer, 2020, "GLU Variants Improve Transformer", §2). With
    act = GELU it is GeGLU: GEGLU(x, W, V) = GELU(xW) ⊗ xV, x·[W | V] being one Linear(d, 2·inter).
    (..., 2·inter) → (..., inter). MosaicBERT's `act(first half) · second half` and ModernBERT's
    `input, gate = Wi(h).chunk(2); act(input) * gate` are both this function."""
    if x.shape[-1] % 2:
        raise ValueError(f"glu needs an even last axis to split into input and gate halves, got {x.shape[-1]}")
    x_in, gate = jnp.split(x, 2, axis=-1)
    return act(x_in) * gate
