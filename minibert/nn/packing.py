"""Unpadding and sequence packing with static shapes: no FLOP spent on padding in the per-token layers.

A padded batch (batch, seq) wastes the work of every per-token layer (embeddings, projections, the
feed-forward network, the MLM head) on its padding. MosaicBERT (Portes et al. 2023, §2.1 "unpadding")
removes the padding before the encoder and puts it back after; ModernBERT (Warner et al. 2024, §2.1.3)
does the same. Attention still needs to know which tokens belong together: that is what segment ids say.

Three inputs, three meanings (all (batch, seq) int):
- `attention_mask` is visibility only: 1 = a real token the others may attend to, 0 = padding (any nonzero
  counts as 1). A 0 in the middle of a row (a "hole") hides that token and nothing else: it does not split
  the row into documents and does not restart positions.
- `segment_ids` (optional) says which documents are *packed* in a row (what a packing data pipeline
  produces): 1, 2, 3, … for the documents of the row, back to back, 0 for padding. Attention must not cross
  documents — `attention.document_mask(attention_mask, segment_ids)` — and positions restart at each
  document — `positions_from_segments(segment_ids)` — for absolute embeddings, RoPE and ALiBi alike.
  Without it every row is one document.
- `position_ids` (optional): the position of each token; by default `positions_from_segments(segment_ids)`
  when segment ids are given, else the column index 0 … seq−1 (as `transformers` does for an unpacked row,
  holes in the mask included).

Unpadded tokens: `unpad` gathers the real tokens of the whole batch (attention_mask > 0, and segment id > 0
when given) to the front of one flat row of a static `capacity` (default batch·seq), with the document and
position of each; `repad` scatters them back. JAX needs static shapes, so the row's length cannot be the number
of real tokens of *this* batch. FLOPs are saved exactly when capacity < batch·seq: choose the capacity as the
real-token budget of the batches you feed (a packed data pipeline gives a fixed budget per batch). Slots past
the real tokens are empty (segment id 0) and are dropped by `repad`. More real tokens than `capacity` is an
error (checked on the host by `check_capacity`; under `jit` nothing can check it, so check before).

API (all shapes static; `...` = any trailing feature axes):

    packed, u = unpad(x, attention_mask, capacity, segment_ids)   # (batch, seq, ...) → (1, capacity, ...)
    types = pack(token_type_ids, u)                     # another (batch, seq, ...) tensor, same layout
    ...per-token layers on (1, capacity, hidden)...
    x = repad(packed, u)                                # (1, capacity, ...) → (batch, seq, ...), zeros at padding
    u.segment_ids, u.positions                          # (1, capacity): document id (0 = empty), position in it
    positions_from_segments(segment_ids)                # (rows, seq) → position of each token in its document
    default_positions(segment_ids, shape)               # the default position_ids described above
    set_token_capacity(model, capacity)                 # every module with a `token_capacity` attribute

Attention on unpadded tokens: either `repad` q/k/v to (batch, seq, ...) and attend per row with
`document_mask(attention_mask, segment_ids)` (cost batch·seq², what MosaicBERT and ModernBERT do), or
attend on the flat row with `segment_mask(u.segment_ids)` (cost capacity², worth it only when capacity is about
one row long; it does not know the positions of holes, so ALiBi/RoPE must use `u.positions`).
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
        slot. positions: (1, capacity) int32, the default position of each token (`default_positions`): from
        its document's first token when `unpad` was given segment ids, else its column in the row (a hole in
        the attention mask does not close up); 0 in an empty slot."""

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


def default_positions(segment_ids: jax.Array | None, shape: tuple[int, int]) -> jax.Array:
    """The position_ids a model uses when none are given, (batch, seq) int32: `positions_from_segments(segment_ids)`
    for packed rows, else 0 … seq−1 in every row whatever the attention mask says (as `transformers`)."""
    if segment_ids is not None:
        return positions_from_segments(segment_ids)
    return jnp.broadcast_to(jnp.arange(shape[1], dtype=jnp.int32), shape)


def real_tokens(attention_mask, segment_ids=None):
    """Which tokens are real: visible (attention_mask > 0) and, for packed rows, in a document (segment id > 0).
    Works on NumPy and JAX arrays alike."""
    real = attention_mask > 0
    return real if segment_ids is None else real & (segment_ids > 0)


def check_capacity(attention_mask, capacity: int | None, segment_ids=None) -> None:
    """Host-side check that the real tokens of a batch fit in `capacity` (None = batch·seq: always)."""
    if capacity is None:
        return
    if capacity < 1:
        raise ValueError(f"token capacity must be positive, got {capacity}")
    real = int(np.count_nonzero(real_tokens(np.asarray(attention_mask),
                                            None if segment_ids is None else np.asarray(segment_ids))))
    if real > capacity:
        raise ValueError(f"the batch has {real} real tokens but the token capacity is {capacity}: "
                         f"raise the capacity or send fewer tokens")


def unpad(x: jax.Array, attention_mask: jax.Array, capacity: int | None = None,
          segment_ids: jax.Array | None = None) -> tuple[jax.Array, Unpadded]:
    """Gather the real tokens of x (batch, seq, ...) to the front of a (1, capacity, ...) row.

    `attention_mask` is 0/1 visibility; `segment_ids` (optional) numbers the documents packed in each row
    (1, 2, …; 0 = padding): a token is real when visible and, given segment ids, in a document. Documents come
    from `segment_ids` when given, else each row is one document (holes in the mask included). Empty slots hold
    zeros. Returns the packed tensor and the `Unpadded` record that `pack` and `repad` use."""
    batch, seq = attention_mask.shape
    if x.shape[:2] != (batch, seq):
        raise ValueError(f"x has shape {x.shape} but attention_mask has shape {attention_mask.shape}")
    if segment_ids is not None and segment_ids.shape != (batch, seq):
        raise ValueError(f"segment_ids has shape {segment_ids.shape} but attention_mask has shape "
                         f"{attention_mask.shape}")
    capacity = batch * seq if capacity is None else capacity
    if not any(isinstance(a, jax.core.Tracer) for a in (attention_mask, segment_ids)):
        check_capacity(attention_mask, capacity, segment_ids)
    real_mask = real_tokens(attention_mask, segment_ids).reshape(-1)
    (indices,) = jnp.nonzero(real_mask, size=capacity, fill_value=batch * seq)
    indices = indices.astype(jnp.int32)
    real = indices < batch * seq
    row = indices // seq
    if segment_ids is None:
        document = row                                                               # one document per row
    else:
        document = jnp.take(segment_ids.reshape(-1), indices, mode="fill", fill_value=0)  # id within its row
    new_document = jnp.concatenate([jnp.ones((1,), bool),
                                    (row[1:] != row[:-1]) | (document[1:] != document[:-1])])
    flat_segments = jnp.where(real, jnp.cumsum(new_document & real), 0).astype(jnp.int32)[None]
    layout = Unpadded(indices=indices, segment_ids=flat_segments, positions=jnp.zeros_like(flat_segments),
                      batch=batch, seq=seq)
    layout = layout.replace(positions=pack(default_positions(segment_ids, (batch, seq)), layout).astype(jnp.int32))
    return pack(x, layout), layout


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
