"""What every minibert model shares: input checks, a jit-compiled call, and Hugging Face-style loading.

    model = BertForMaskedLM.from_pretrained(path)             # or minibert.from_pretrained(path)
    out = model(input_ids, attention_mask=mask, token_type_ids=types)
    out.logits                                                  # (batch, seq, vocab)

Called with host arrays (numpy, lists, concrete jax arrays) the model checks them and runs a compiled
forward pass, traced once per input shape. Called inside a `jax.jit`/`nnx.jit` (a training step) it runs
`forward` directly. Dropout follows `model.train()` / `model.eval()`; `from_pretrained` returns eval mode.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


@nnx.jit(static_argnames=("output_hidden_states",))
def _compiled_forward(model, input_ids, attention_mask, token_type_ids, output_hidden_states, targets):
    return model.forward(input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states, **targets)


class PreTrainedModel(nnx.Module):
    """Base class. Subclasses set `config_class`, `base_model_prefix` and implement `forward`."""

    config_class: ClassVar[type]
    base_model_prefix: ClassVar[str] = ""
    is_base_model: ClassVar[bool] = False
    # Checkpoint keys that may be present but are not parameters (buffers, tied copies): regexes.
    ignored_checkpoint_keys: ClassVar[tuple[str, ...]] = (r"(^|\.)position_ids$",)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, *, output_hidden_states: bool = False,
                 **targets):
        if attention_mask is None:
            attention_mask = jnp.ones(jnp.shape(input_ids), jnp.int32)
        if token_type_ids is None:
            token_type_ids = jnp.zeros(jnp.shape(input_ids), jnp.int32)
        arrays = (input_ids, attention_mask, token_type_ids, *targets.values())
        if any(isinstance(a, jax.core.Tracer) for a in arrays):
            return self.forward(input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states,
                                **targets)
        self.check_inputs(np.asarray(input_ids), np.asarray(attention_mask), np.asarray(token_type_ids))
        as_int = lambda a: jnp.asarray(a).astype(jnp.int32)  # one dtype per input, so one trace per shape
        targets = {k: None if v is None else jnp.asarray(v) for k, v in targets.items()}
        return _compiled_forward(self, as_int(input_ids), as_int(attention_mask), as_int(token_type_ids),
                                 output_hidden_states, targets)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, **targets):
        raise NotImplementedError

    @classmethod
    def accepts_masked_positions(cls) -> bool:
        """Whether the MLM head can run on the masked positions only (a sparse head: `masked_positions`)."""
        return "masked_positions" in inspect.signature(cls.forward).parameters

    def check_inputs(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> None:
        """Host-side checks: one clear error instead of a silent wrong answer."""
        config = self.config
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must have shape (batch, seq), got {input_ids.shape}")
        if not np.issubdtype(input_ids.dtype, np.integer):
            raise TypeError(f"input_ids must be integers, got {input_ids.dtype}")
        for name, array in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if array.shape != input_ids.shape:
                raise ValueError(f"{name} has shape {array.shape} but input_ids has shape {input_ids.shape}")
        max_positions = getattr(config, "max_position_embeddings", None)
        if max_positions is not None and input_ids.shape[1] > max_positions:
            raise ValueError(f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings {max_positions}")
        bad = input_ids[(input_ids < 0) | (input_ids >= config.vocab_size)]
        if bad.size:
            raise ValueError(f"input_ids outside the vocabulary [0, {config.vocab_size}): {sorted(set(bad.tolist()))[:10]}")
        types = getattr(config, "type_vocab_size", None)
        if types is not None:
            bad = token_type_ids[(token_type_ids < 0) | (token_type_ids >= types)]
            if bad.size:
                raise ValueError(f"token_type_ids outside [0, {types}): {sorted(set(bad.tolist()))[:10]}")

    @classmethod
    def from_pretrained(cls, path, *, dtype=jnp.float32):
        """Load a Hugging Face directory into this class (see `minibert.checkpoints.hf.from_pretrained`)."""
        from minibert.checkpoints.hf import from_pretrained

        return from_pretrained(path, model_class=cls, dtype=dtype)

    def save_pretrained(self, path) -> None:
        from minibert.checkpoints.hf import save_pretrained

        save_pretrained(self, path)
