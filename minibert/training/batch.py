"""What a training batch holds, and which of it a model takes (the flax lm1b convention: named fields, not a dict).

    batch = Batch(input_ids=ids, attention_mask=mask, labels=labels)     # or Batch.from_dict(arrays)
    out = model(**model_inputs(model, batch))                            # the fields `model` declares, set ones only

`Batch` is a pytree (`flax.struct.dataclass`): `jax.device_put(batch, sharding)` and `jax.jit` take it whole, and a
field left None is simply no leaf. It also reads like the dict batches it replaces — `batch["labels"]`,
`batch.get("masked_positions")`, `"labels" in batch`, `batch.keys()` (the fields that are set) — so code written
for either works on both; fine-tuning keeps dicts, for its task-specific keys (start_positions, teacher_logits).

Each model declares the fields it takes, `batch_fields()` (derived from its `forward`/`__call__` signature).
`model_inputs` passes those and drops the rest, with two exceptions that raise instead of dropping silently:
`segment_ids`/`position_ids` (packed rows: a model that ignored them would attend across documents) and
`masked_positions` for a model that takes labels (the labels are laid out at those positions).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from flax import struct

Array = jax.Array | np.ndarray

# Set in a batch, these must reach the model: ignoring them gives silently wrong attention or positions.
PACKING_FIELDS = ("segment_ids", "position_ids")


@struct.dataclass
class Batch:
    """One training batch; every array (batch, seq) int32 unless said. None = not in this batch."""

    input_ids: Array
    attention_mask: Array                  # 0/1 only: 1 = a real token the others may attend to
    token_type_ids: Array | None = None
    segment_ids: Array | None = None       # packed rows: the document of each token, 1, 2, … ; 0 = padding
    position_ids: Array | None = None      # packed rows: the position of each token within its document
    labels: Array | None = None            # (batch, seq) dense MLM (-100 = not scored), or (batch, max_predictions)
    masked_positions: Array | None = None  # (batch, max_predictions): where `labels` are, for a sparse MLM head
    next_sentence_label: Array | None = None   # (batch,) NSP: 1 = B is from another document
    sentence_order_label: Array | None = None  # (batch,) ALBERT's SOP: 1 = A and B swapped

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, d: dict) -> Batch:
        """A Batch of a dict's arrays; a key that is not a field is an error."""
        unknown = sorted(set(d) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"not Batch fields: {', '.join(unknown)} (fields: {', '.join(cls.field_names())})")
        return cls(**d)

    # ---- read like a dict of the fields that are set ----------------------------------------------------

    def keys(self) -> tuple[str, ...]:
        return tuple(name for name in self.field_names() if getattr(self, name) is not None)

    def items(self) -> list[tuple[str, Array]]:
        return [(name, getattr(self, name)) for name in self.keys()]

    def __iter__(self):
        return iter(self.keys())

    def __contains__(self, name) -> bool:
        return name in self.keys()

    def __getitem__(self, name: str) -> Array:
        if name not in self:
            raise KeyError(name)
        return getattr(self, name)

    def get(self, name: str, default=None):
        return self[name] if name in self else default


def model_inputs(model, batch: Batch | dict) -> dict:
    """The keyword arguments of `model(**kwargs)`: the batch's fields (a Batch's set ones, a dict's keys) that the
    model declares (`type(model).batch_fields()`); the others are not passed. Raises ValueError, naming the field
    and the model class, for a set `segment_ids`/`position_ids` the model does not take, and for `masked_positions`
    given to a model that takes labels but not masked positions."""
    accepted = type(model).batch_fields()
    present = {k: v for k, v in batch.items() if v is not None}
    name = type(model).__name__
    for field in PACKING_FIELDS:
        if field in present and field not in accepted:
            raise ValueError(f"the batch has {field} (packed documents) but {name} does not take {field}: it would "
                             f"attend across documents. Unpack the rows or use a model that takes them")
    if "masked_positions" in present and "labels" in accepted and "masked_positions" not in accepted:
        raise ValueError(f"the batch has masked_positions (labels at the masked positions only) but {name} does not "
                         f"take masked_positions: use dense labels (no max_predictions) for it")
    return {k: v for k, v in present.items() if k in accepted}
