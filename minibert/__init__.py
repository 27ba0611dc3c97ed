"""minibert: the BERT family of encoders, from scratch in JAX / flax.nnx."""
