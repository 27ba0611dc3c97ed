"""The optimizer: AdamW (Loshchilov & Hutter, 2019) with decoupled weight decay, warmup, decay, clipping.

BERT (Devlin et al., 2019, Appendix A.2): Adam, β₁ = 0.9, β₂ = 0.999, L2 weight decay 0.01, learning-rate
warmup over the first steps then linear decay; no weight decay on biases and LayerNorm weights — here,
every parameter with fewer than two dimensions. Gradients are clipped to a global norm of 1.0.
"""

import jax
import optax


def learning_rate_schedule(peak: float, steps: int, warmup: int, decay: str = "linear") -> optax.Schedule:
    """0 → peak over `warmup` steps, then linear or cosine decay to 0 at `steps`."""
    if decay not in ("linear", "cosine"):
        raise ValueError(f"unknown decay {decay!r}; choose linear or cosine")
    rise = optax.linear_schedule(0.0, peak, max(warmup, 1))
    fall_steps = max(steps - warmup, 1)
    fall = (optax.linear_schedule(peak, 0.0, fall_steps) if decay == "linear"
            else optax.cosine_decay_schedule(peak, fall_steps))
    return optax.join_schedules([rise, fall], [warmup])


def adamw(schedule: optax.Schedule, *, weight_decay: float = 0.01, clip_norm: float = 1.0, b1: float = 0.9,
          b2: float = 0.999, eps: float = 1e-6) -> optax.GradientTransformation:
    """Clip by global norm, then AdamW whose weight decay skips biases and norm weights (ndim < 2)."""
    decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
    return optax.chain(optax.clip_by_global_norm(clip_norm),
                       optax.adamw(schedule, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, mask=decay_mask))
