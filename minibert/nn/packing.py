"""Unpadding and sequence packing with static shapes: no FLOP spent on padding in the per-token layers.

A padded batch (batch, seq) wastes the work of every per-token layer (embeddings, projections, the
feed-forward network, the MLM head) on its padding. MosaicBERT (Portes et al. 2023, §2.1 "unpadding")
removes the padding before the encoder and puts it back after; ModernBERT (Warner et al. 2024, §2.1.3)
does the same. Attention still needs to know which tokens belong together: that is what segment ids say.

Two layouts, one vocabulary:
- *Packed rows* (what a packing data pipeline produces): each row of (batch, seq) holds several documents
  back to back, and `attention_mask` carries their **segment ids**: 1, 2, 3, … for the documents of the
  row, 0 for padding (a plain 0/1 mask is the one-document case). Attention must not cross documents —
  `attention.segment_mask(attention_mask)` — and positions restart at each document —
  `positions_from_segments(attention_mask)` — for absolute embeddings, RoPE and ALiBi alike.
- *Unpadded tokens*: `unpad` gathers the real tokens of the whole batch to the front of one flat row of a
  static `capacity` (default batch·seq), with the segment id and position of each; `repad` scatters them
  back. JAX needs static shapes, so the row's length cannot be the number of real tokens of *this* batch.
  FLOPs are saved exactly when capacity < batch·seq: choose the capacity as the real-token budget of the
  batches you feed (a packed data pipeline gives a fixed budget per batch). Slots past the real tokens are
  empty (segment id 0) and are dropped by `repad`. More real tokens than `capacity` is an error (checked on
  the host by `check_capacity`; under `jit` nothing can check it, so check before).

API (all shapes static; `...` = any trailing feature axes):

    packed, u = unpad(x, attention_mask, capacity)     # (batch, seq, ...) → (1, capacity, ...), Unpadded
    types = pack(token_type_ids, u)                     # another (batch, seq, ...) tensor, same layout
    ...per-token layers on (1, capacity, hidden)...
    x = repad(packed, u)                                # (1, capacity, ...) → (batch, seq, ...), zeros at padding
    u.segment_ids, u.positions                          # (1, capacity): document id (0 = empty), position in it
    positions_from_segments(segment_ids)                # (rows, seq) → position of each token in its document
    set_token_capacity(model, capacity)                 # every module with a `token_capacity` attribute

Attention on unpadded tokens: either `repad` q/k/v to (batch, seq, ...) and attend per row with
`segment_mask(attention_mask)` (cost batch·seq², what MosaicBERT does), or attend on the flat row with
`segment_mask(u.segment_ids)` (cost capacity², worth it only when capacity is about one row long).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct


@struct.dataclass
class Unpadded:
    """Where each real token of a (batch, seq) batch sits in the flat (1, capacity) row.

    indices: (capacity,) int32, the flat index row·seq + column of the token in each slot; batch·seq marks
        an empty slot. segment_ids: (1, capacity) int32, the document of each token, numbered 1, 2, … in
        packed order (= row index + 1 when each row holds one document and none is empty), 0 for an empty
        slot. positions: (1, capacity) int32, the position of each token from its document's first token."""

    indices: jax.Array
    segment_ids: jax.Array
    positions: jax.Array
    batch: int = struct.field(pytree_node=False)
    seq: int = struct.field(pytree_node=False)


def positions_from_segments(segment_ids: jax.Array) -> jax.Array:
    """(rows, seq) segment ids, 0 = padding → (rows, seq) int32 position of each token within its document:
    p_i = i − (index of the first token of the run of equal ids that contains i); 0 at padding. Documents in
    a row must be contiguous and adjacent documents must have different ids."""
    index = jnp.arange(segment_ids.shape[-1], dtype=jnp.int32)
    starts = jnp.concatenate([jnp.ones_like(segment_ids[..., :1], bool),
                              segment_ids[..., 1:] != segment_ids[..., :-1]], axis=-1)   # a new run begins
    run_start = jax.lax.cummax(jnp.where(starts, index, 0), axis=segment_ids.ndim - 1)  # first index of the run
    return jnp.where(segment_ids > 0, index - run_start, 0)


def check_capacity(attention_mask, capacity: int | None) -> None:
    """Host-side check that the real tokens of `attention_mask` fit in `capacity` (None = batch·seq: always)."""
    if capacity is None:
        return
    if capacity < 1:
        raise ValueError(f"token capacity must be positive, got {capacity}")
    real = int(np.count_nonzero(np.asarray(attention_mask) > 0))
    if real > capacity:
        raise ValueError(f"the batch has {real} real tokens but the token capacity is {capacity}: "
                         f"raise the capacity or send fewer tokens")


def unpad(x: jax.Array, attention_mask: jax.Array, capacity: int | None = None) -> tuple[jax.Array, Unpadded]:
    """Gather the real tokens (attention_mask > 0) of x (batch, seq, ...) to the front of a (1, capacity, ...) row.

    `attention_mask` is 0/1 or carries segment ids (see the module docstring). Empty slots hold zeros.
    Returns the packed tensor and the `Unpadded` record that `pack` and `repad` use."""
    batch, seq = attention_mask.shape
    if x.shape[:2] != (batch, seq):
        raise ValueError(f"x has shape {x.shape} but attention_mask has shape {attention_mask.shape}")
    capacity = batch * seq if capacity is None else capacity
    if not isinstance(attention_mask, jax.core.Tracer):
        check_capacity(attention_mask, capacity)
    flat_mask = attention_mask.reshape(-1)
    (indices,) = jnp.nonzero(flat_mask > 0, size=capacity, fill_value=batch * seq)
    indices = indices.astype(jnp.int32)
    real = indices < batch * seq
    row = indices // seq
    document = jnp.take(flat_mask, indices, mode="fill", fill_value=0)                 # id within its row
    new_document = jnp.concatenate([jnp.ones((1,), bool),
                                    (row[1:] != row[:-1]) | (document[1:] != document[:-1])])
    segment_ids = jnp.where(real, jnp.cumsum(new_document & real), 0).astype(jnp.int32)[None]
    unpadded = Unpadded(indices=indices, segment_ids=segment_ids, positions=positions_from_segments(segment_ids),
                        batch=batch, seq=seq)
    return pack(x, unpadded), unpadded


def pack(x: jax.Array, unpadded: Unpadded) -> jax.Array:
    """Lay out another (batch, seq, ...) tensor as `unpad` laid out its first: → (1, capacity, ...), zeros in
    empty slots."""
    if x.shape[:2] != (unpadded.batch, unpadded.seq):
        raise ValueError(f"x has shape {x.shape}, the unpadded batch was {(unpadded.batch, unpadded.seq)}")
    flat = x.reshape(unpadded.batch * unpadded.seq, *x.shape[2:])
    return jnp.take(flat, unpadded.indices, axis=0, mode="fill", fill_value=0)[None]


def repad(packed: jax.Array, unpadded: Unpadded) -> jax.Array:
    """Scatter a (1, capacity, ...) row back to (batch, seq, ...): zeros at padding, empty slots dropped."""
    flat = jnp.zeros((unpadded.batch * unpadded.seq, *packed.shape[2:]), packed.dtype)
    flat = flat.at[unpadded.indices].set(packed[0], mode="drop")
    return flat.reshape(unpadded.batch, unpadded.seq, *packed.shape[2:])


def set_token_capacity(model: nnx.Module, capacity: int | None) -> None:
    """Set the static token capacity of every unpadding module in `model` (None = batch·seq; recompiles)."""
    if capacity is not None and capacity < 1:
        raise ValueError(f"token capacity must be positive, got {capacity}")
    for _, module in nnx.iter_modules(model):
        if hasattr(module, "token_capacity"):
            module.token_capacity = capacity
