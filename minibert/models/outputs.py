"""What a model returns: one pytree dataclass with Hugging Face's field names (unused fields are None)."""

import jax
from flax import struct


@struct.dataclass
class ModelOutput:
    last_hidden_state: jax.Array                 # (batch, seq, hidden)
    pooler_output: jax.Array | None = None       # (batch, hidden)
    hidden_states: tuple | None = None           # embeddings, then each layer: (batch, seq, hidden) each
    logits: jax.Array | None = None             # MLM (batch, seq, vocab) or a task head's logits
    seq_relationship_logits: jax.Array | None = None  # NSP (batch, 2)
    loss: jax.Array | None = None                # scalar, when labels were given
