"""What a model returns: one pytree dataclass with Hugging Face's field names (unused fields are None).

Read it as a `transformers` output: by attribute (`out.logits`), by name (`out["logits"]`), by position
(`out[0]`, the first field that is not None) or whole (`out.to_tuple()`), in the order `transformers` lists its
fields. That order depends on the model, and a rule gives it: a model with a head returns
(loss, its head's outputs, hidden_states, attentions) — `transformers` leaves the encoder's last_hidden_state
out there, though minibert keeps it as an attribute; a bare encoder returns
(last_hidden_state, pooler_output, hidden_states, attentions).
"""

import jax
from flax import struct

# A head's outputs, in transformers' order; a *ForPreTraining model's MLM logits are its `prediction_logits`.
HEAD_FIELDS = ("logits", "seq_relationship_logits", "sop_logits", "start_logits", "end_logits")
SENTENCE_HEADS = ("seq_relationship_logits", "sop_logits")      # NSP (BERT), sentence order (ALBERT)
ENCODER_FIELDS = ("last_hidden_state", "pooler_output")


@struct.dataclass
class ModelOutput:
    last_hidden_state: jax.Array                 # (batch, seq, hidden)
    pooler_output: jax.Array | None = None       # (batch, hidden)
    hidden_states: tuple | None = None           # embeddings, then each layer: (batch, seq, hidden) each
    logits: jax.Array | None = None             # MLM (batch, seq, vocab) or a task head's logits
    seq_relationship_logits: jax.Array | None = None  # NSP (batch, 2)
    sop_logits: jax.Array | None = None          # ALBERT's sentence order (batch, 2)
    loss: jax.Array | None = None                # scalar, when labels were given
    attentions: tuple | None = None              # each layer's attention probabilities: (batch, heads, seq, seq) each

    @property
    def prediction_logits(self) -> jax.Array | None:
        """The MLM logits of a *ForPreTraining model, under transformers' name (an alias of `logits`)."""
        return self.logits

    def keys(self) -> tuple[str, ...]:
        """The names of the fields that are not None, in transformers' order."""
        head = [name for name in HEAD_FIELDS if getattr(self, name, None) is not None]
        if "logits" in head and any(name in head for name in SENTENCE_HEADS):
            head[head.index("logits")] = "prediction_logits"
        names = ("loss", *head) if head else ENCODER_FIELDS
        return tuple(n for n in (*names, "hidden_states", "attentions") if getattr(self, n) is not None)

    def to_tuple(self) -> tuple:
        return tuple(getattr(self, name) for name in self.keys())

    def __getitem__(self, key: int | slice | str):
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(f"{key!r} is not among this output's fields {self.keys()}")
            return getattr(self, key)
        return self.to_tuple()[key]
