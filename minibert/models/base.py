"""What every minibert model shares: input checks, a jit-compiled call, and Hugging Face-style loading.

    model = BertForMaskedLM.from_pretrained(path)             # or minibert.from_pretrained(path)
    out = model(input_ids, attention_mask=mask, token_type_ids=types)
    out.logits                                                  # (batch, seq, vocab)

Called with host arrays (numpy, lists, concrete jax arrays) the model checks them and runs a compiled
forward pass (models/host.py): the sequence padded to a bucket (the next multiple of `pad_to_multiple_of`, 32 by
default; None: every length as it is) and the outputs sliced back, so it compiles once per bucket. Called inside
a `jax.jit`/`nnx.jit` (a training step) it runs `forward` directly. Dropout follows `model.train()` /
`model.eval()`; `from_pretrained` returns eval mode.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from minibert.models import host
from minibert.nn.attention import attention_maps_recorded, capture_attention_maps

# Packed rows (the models that take them say so in `forward`): checked like input_ids, passed as int32.
PACKING_INPUTS = ("segment_ids", "position_ids")


def _forward(model, input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions, targets):
    """`model.forward`; with `output_attentions`, every attention module records its probabilities for this call
    (on the reference path) and they come back as `attentions`, one (batch, heads, seq, seq) array per layer."""
    run = lambda m: m.forward(input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states,
                              **targets)
    if not output_attentions:
        return run(model)
    with attention_maps_recorded(model):
        out, maps = capture_attention_maps(run, model)
    return out.replace(attentions=tuple(maps))



def tracing(model) -> bool:
    """Whether the model runs under a jax transformation whose inputs its arrays are not (host arrays captured by a
    closure): under `jit` every jnp value is a tracer (omnistaging), under `grad`/`vmap` of the model its
    parameters are."""
    parameter = next((node for _, node in nnx.iter_graph(model) if isinstance(node, nnx.Variable)), None)
    return isinstance(jnp.zeros((), jnp.int32), jax.core.Tracer) or (
        parameter is not None and isinstance(parameter.get_raw_value(), jax.core.Tracer))


def signature_fields(function) -> tuple[str, ...]:
    """The named parameters of a model's `forward`/`__call__` that a batch fills, in order: all but `self`,
    `output_hidden_states`, `inputs_embeds` (the caller's alternative to input_ids), `key` (a PRNG key the training
    step passes to models that say `needs_key`) and */** catch-alls."""
    return tuple(name for name, p in inspect.signature(function).parameters.items()
                 if name not in ("self", "output_hidden_states", "inputs_embeds", "key")
                 and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD))


class PreTrainedModel(nnx.Module):
    """Base class. Subclasses set `config_class`, `base_model_prefix` and implement `forward`."""

    config_class: ClassVar[type]
    base_model_prefix: ClassVar[str] = ""
    is_base_model: ClassVar[bool] = False
    # Checkpoint keys of this class that may be present but are not parameters (tied copies): regexes. Buffers every
    # family recomputes (position_ids, ...) are ignored by the loader itself (checkpoints/hf.py RECOMPUTED_BUFFERS).
    ignored_checkpoint_keys: ClassVar[tuple[str, ...]] = ()
    # Host calls pad the sequence to the next multiple of this (None: no padding); see models/host.py.
    pad_to_multiple_of: int | None = host.DEFAULT_PAD_TO_MULTIPLE_OF

    def __call__(self, input_ids=None, attention_mask=None, token_type_ids=None, *, output_hidden_states: bool = False,
                 output_attentions: bool = False, inputs_embeds=None, **targets):
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass either input_ids (batch, seq) or inputs_embeds (batch, seq, embedding_size)")
        if inputs_embeds is not None:
            if "inputs_embeds" not in inspect.signature(self.forward).parameters:
                raise ValueError(f"{type(self).__name__} does not take inputs_embeds")
            targets["inputs_embeds"] = inputs_embeds
        shape = jnp.shape(input_ids) if inputs_embeds is None else jnp.shape(inputs_embeds)[:-1]
        if attention_mask is None:      # (numpy: a jnp array would compile once per shape on the host path)
            attention_mask = np.ones(shape, np.int32)
        if token_type_ids is None:
            token_type_ids = np.zeros(shape, np.int32)
        arrays = (input_ids, attention_mask, token_type_ids, *targets.values())
        if any(isinstance(a, jax.core.Tracer) for a in arrays) or tracing(self):
            return _forward(self, input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions,
                            targets)
        packing = {k: np.asarray(targets[k]) for k in PACKING_INPUTS if targets.get(k) is not None}
        refused = [k for k in packing if k not in type(self).batch_fields()]
        if refused:
            raise ValueError(f"{type(self).__name__} does not take {', '.join(refused)} (packed documents): only "
                             f"models that build a per-document mask and positions do (MosaicBERT, ModernBERT)")
        ids = np.asarray(input_ids) if inputs_embeds is None else self.check_inputs_embeds(np.asarray(inputs_embeds))
        self.check_inputs(ids, np.asarray(attention_mask), np.asarray(token_type_ids), **packing)
        as_int = lambda a: np.asarray(a).astype(np.int32)  # one dtype per input, so one trace per shape
        targets = {k: None if v is None else jax.device_put(as_int(v) if k in PACKING_INPUTS else v)
                   for k, v in targets.items()}
        return host.call(self, _forward, None if input_ids is None else as_int(input_ids), as_int(attention_mask),
                         as_int(token_type_ids), targets, output_hidden_states=output_hidden_states,
                         output_attentions=output_attentions)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, **targets):
        raise NotImplementedError

    @property
    def base_model(self) -> PreTrainedModel:
        """The bare encoder under `base_model_prefix` (`model.bert`, ...), or the model itself when it is one."""
        return getattr(self, self.base_model_prefix, self)

    @classmethod
    def batch_fields(cls) -> tuple[str, ...]:
        """The batch fields this model takes (`training.batch.model_inputs` passes these): input_ids,
        attention_mask, token_type_ids and the targets `forward` names (labels, masked_positions, ...).
        A model without an NSP head (`nsp = False`: BERT's and MobileBERT's masked LMs share the pretraining
        `forward`) does not take next_sentence_label."""
        fields = signature_fields(cls.forward)
        if getattr(cls, "nsp", None) is False:
            fields = tuple(f for f in fields if f != "next_sentence_label")
        return fields

    @classmethod
    def accepts_masked_positions(cls) -> bool:
        """Whether the MLM head can run on the masked positions only (a sparse head: `masked_positions`)."""
        return "masked_positions" in cls.batch_fields()

    def check_inputs_embeds(self, inputs_embeds: np.ndarray) -> np.ndarray:
        """inputs_embeds, given instead of input_ids, must be floats (batch, seq, embedding_size) (`hidden_size`
        where the config has no `embedding_size`, or it is 0 or None: as wide as the hidden state). Returns stand-in
        ids of its (batch, seq) shape, for the checks that input_ids would get (shapes, length)."""
        width = getattr(self.config, "embedding_size", None) or self.config.hidden_size
        if not np.issubdtype(inputs_embeds.dtype, np.floating):
            raise TypeError(f"inputs_embeds must be floats, got {inputs_embeds.dtype}")
        if inputs_embeds.ndim < 3 or inputs_embeds.shape[-1] != width:
            raise ValueError(f"inputs_embeds must have shape (batch, seq, {width}), got {inputs_embeds.shape}")
        return np.zeros(inputs_embeds.shape[:-1], np.int32)

    def check_inputs(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray, *,
                     segment_ids: np.ndarray | None = None, position_ids: np.ndarray | None = None) -> None:
        """Host-side checks: one clear error instead of a silent wrong answer. `segment_ids`/`position_ids` (packed
        rows, for the models that take them) must be non-negative integers of input_ids' shape."""
        config = self.config
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must have shape (batch, seq), got {input_ids.shape}")
        if not np.issubdtype(input_ids.dtype, np.integer):
            raise TypeError(f"input_ids must be integers, got {input_ids.dtype}")
        for name, array in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids),
                            ("segment_ids", segment_ids), ("position_ids", position_ids)):
            if array is not None and array.shape != input_ids.shape:
                raise ValueError(f"{name} has shape {array.shape} but input_ids has shape {input_ids.shape}")
        for name, array in (("segment_ids", segment_ids), ("position_ids", position_ids)):
            if array is None:
                continue
            if not np.issubdtype(array.dtype, np.integer):
                raise TypeError(f"{name} must be integers, got {array.dtype}")
            if (array < 0).any():
                raise ValueError(f"{name} must be non-negative, got {int(array.min())}")
        max_positions = getattr(config, "max_position_embeddings", None)
        if max_positions is not None and input_ids.shape[1] > max_positions:
            raise ValueError(f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings {max_positions}")
        bad = input_ids[(input_ids < 0) | (input_ids >= config.vocab_size)]
        if bad.size:
            raise ValueError(f"input_ids outside the vocabulary [0, {config.vocab_size}): {sorted(set(bad.tolist()))[:10]}")
        types = getattr(config, "type_vocab_size", None)
        if types is not None:            # 0: no table (DeBERTa-v3), so only the default type 0 means anything
            bad = token_type_ids[(token_type_ids < 0) | (token_type_ids >= max(types, 1))]
            if bad.size:
                raise ValueError(f"token_type_ids outside [0, {max(types, 1)}): {sorted(set(bad.tolist()))[:10]}"
                                 + (" (type_vocab_size is 0: the model has no token types)" if not types else ""))

    @classmethod
    def from_pretrained(cls, name_or_path, **kwargs):
        """Load a Hugging Face directory or Hub name into this class; the keyword arguments (dtype,
        ignore_mismatched_sizes, output_loading_info, num_labels=, ...) are `minibert.checkpoints.hf.from_pretrained`'s."""
        from minibert.checkpoints.hf import from_pretrained

        return from_pretrained(name_or_path, model_class=cls, **kwargs)

    def save_pretrained(self, path) -> None:
        from minibert.checkpoints.hf import save_pretrained

        save_pretrained(self, path)
