"""Scaled dot-product attention, its masks, and multi-head self-attention.

Vaswani et al. (2017), §3.2.1–3.2.2:
    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + bias) V,     MultiHead = Concat(head_1..head_h) (in `output`)
Tensors are (batch, seq, heads, head_dim). Which keys a query may see is a boolean `mask` that broadcasts to
(batch, heads, q_seq, k_seq) — padding (a 0/1 `attention_mask`), packed documents (separate segment ids;
`document_mask` combines the two), sliding windows — and an optional additive `bias` of the same shape carries
position information (ALiBi).

Two implementations compute the same function:
- "reference": einsum + float32 softmax, readable, works everywhere, supports attention dropout;
- "fused": `jax.nn.dot_product_attention` — cuDNN flash attention on a GPU for bf16/fp16 inputs, XLA
  elsewhere. It has no attention dropout, so a training-mode dropout falls back to the reference path.

Attention maps. Distillation's attention transfer (distillation.py) needs the probabilities softmax(q kᵀ/√d)
of every layer. `record_attention_maps(model)` switches every attention module to sow them (an `AttentionMap`,
(batch, heads, q_seq, k_seq), on the reference path) and `forward_with_attention_maps` collects them in layer
order with `nnx.capture`. A model called with `output_attentions=True` does the same for one call
(`attention_maps_recorded`), and returns them as `out.attentions`.
"""

import contextlib
import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx

from minibert.nn.linear import Linear

IMPLEMENTATIONS = ("reference", "fused")


class AttentionMap(nnx.Intermediate):
    """Attention probabilities (batch, heads, q_seq, k_seq) sown by an attention module that records them."""


def padding_mask(attention_mask: jax.Array) -> jax.Array:
    """(batch, seq) of 1 = real token, 0 = padding → (batch, 1, 1, seq) bool: which keys each query may see."""
    return attention_mask[:, None, None, :] > 0


def padding_bias(attention_mask: jax.Array) -> jax.Array:
    """(batch, seq) mask → additive (batch, 1, 1, seq) float32 bias: 0 for real keys, the most negative float32
    for padding, as Hugging Face builds it (`torch.finfo(dtype).min`)."""
    return jnp.where(padding_mask(attention_mask), 0.0, jnp.finfo(jnp.float32).min)


def segment_mask(segment_ids: jax.Array) -> jax.Array:
    """(batch, seq) segment ids, 0 = padding → (batch, 1, seq, seq) bool: attend only within one's own document."""
    same = segment_ids[:, None, :, None] == segment_ids[:, None, None, :]
    return same & (segment_ids[:, None, None, :] > 0)


def document_mask(attention_mask: jax.Array, segment_ids: jax.Array | None = None) -> jax.Array:
    """Which keys each query may see, bool: the visible keys (`attention_mask` is 0/1 visibility, 0 = hidden,
    wherever it is in the row) and, for packed rows, only those of the query's own document (`segment_ids`
    1, 2, … per document, 0 = padding). (batch, 1, 1, seq) without segment ids, (batch, 1, seq, seq) with."""
    visible = padding_mask(attention_mask)
    return visible if segment_ids is None else visible & segment_mask(segment_ids)


def window_mask(seq_len: int, left: int, right: int) -> jax.Array:
    """(1, 1, seq, seq) bool: query i sees keys j with i − left ≤ j ≤ i + right (a sliding window)."""
    offset = jnp.arange(seq_len)[None, :] - jnp.arange(seq_len)[:, None]  # j − i
    return ((offset >= -left) & (offset <= right))[None, None]


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array, bias: jax.Array | None = None,
                          dropout: nnx.Dropout | None = None, *, mask: jax.Array | None = None,
                          implementation: str = "reference", recorder: nnx.Module | None = None) -> jax.Array:
    """softmax(q kᵀ / √d + bias, masked) v for q, k, v of shape (batch, seq, heads, head_dim).

    `recorder`: the calling module; when its `record_attention` is on, the probabilities are sown on it."""
    dropout_active = dropout is not None and not dropout.deterministic and dropout.rate > 0
    recording = recorder is not None and recorder.record_attention
    if implementation == "fused" and not dropout_active and not recording:
        return _fused_attention(q, k, v, bias, mask)
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown attention implementation {implementation!r}; choose from {IMPLEMENTATIONS}")
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    if recording:
        recorder.sow(AttentionMap, "attention_map", probs)
    if dropout is not None:
        probs = dropout(probs)
    return jnp.einsum("bhqk,bkhd->bqhd", probs, v)


def _fused_attention(q, k, v, bias, mask):
    """`jax.nn.dot_product_attention`: cuDNN on a GPU when the inputs are half precision, else XLA.

    Padding as lengths: a key-padding mask (batch, 1, 1, seq) whose rows are all right-padded (real tokens first,
    as every collator here builds them) goes to the kernel as `key_value_seq_lengths`, which cuDNN applies without
    reading a dense (batch, heads, q_seq, k_seq) mask, skipping the padded key tiles. Any other mask (left padding,
    holes, packed documents, windows, an empty row) goes in as a mask. The choice is made on the values at run time
    (`lax.cond`), so a left-padded batch never gets lengths. Query lengths are not passed: every query row, padded
    or not, keeps the mask path's value (cuDNN would leave padded rows at zero instead; bench/attention_check.py
    times both).
    """
    batch, q_len, heads, _ = q.shape
    kernel = "cudnn" if jax.default_backend() == "gpu" and q.dtype in (jnp.bfloat16, jnp.float16) else "xla"
    if bias is not None:
        bias = jnp.broadcast_to(bias, (batch, heads, q_len, k.shape[1])).astype(q.dtype)
    attend = functools.partial(jax.nn.dot_product_attention, q, k, v, bias, implementation=kernel)
    if mask is None:
        return attend()
    by_mask = lambda: attend(jnp.broadcast_to(mask, (batch, heads, q_len, k.shape[1])))
    if mask.shape != (batch, 1, 1, q_len) or k.shape[1] != q_len:       # not key padding of self-attention
        return by_mask()
    keys = mask[:, 0, 0, :]
    lengths = keys.sum(-1, dtype=jnp.int32)                                             # real tokens per row
    right_padded = jnp.all(keys == (jnp.arange(q_len) < lengths[:, None])) & jnp.all(lengths > 0)
    by_lengths = lambda: attend(key_value_seq_lengths=lengths)
    return jax.lax.cond(right_padded, by_lengths, by_mask)


def set_attention_implementation(model: nnx.Module, implementation: str) -> None:
    """Switch every attention module in `model` to "reference" or "fused" (recompiles on the next call)."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown attention implementation {implementation!r}; choose from {IMPLEMENTATIONS}")
    for _, module in nnx.iter_modules(model):
        if hasattr(module, "attention_implementation"):
            module.attention_implementation = implementation


def record_attention_maps(model: nnx.Module, on: bool = True) -> None:
    """Make every attention module in `model` sow its probabilities (recompiles on the next call)."""
    for _, module in nnx.iter_modules(model):
        if hasattr(module, "record_attention"):
            module.record_attention = on


def capture_attention_maps(function, model: nnx.Module) -> tuple:
    """`function(model)` and the attention maps it recorded, in layer order: a list of (batch, heads, q_seq, k_seq)
    arrays (empty unless the attention modules record them)."""
    out, maps = nnx.capture(function, AttentionMap)(model)
    flat = sorted(nnx.to_flat_state(maps), key=lambda item: item[0])  # paths: (…, "layer", 3, …), numeric order
    return out, [probs for _, variable in flat for probs in variable.get_value()]


def forward_with_attention_maps(model: nnx.Module, *args, **kwargs) -> tuple:
    """`model(*args, **kwargs)` and the attention maps it recorded, in layer order (empty unless
    `record_attention_maps(model)` was called)."""
    return capture_attention_maps(lambda m: m(*args, **kwargs), model)


@contextlib.contextmanager
def attention_maps_recorded(model: nnx.Module):
    """Within the block every attention module of `model` records its probabilities (so takes the reference
    path); each module's own setting is restored after."""
    modules = [module for _, module in nnx.iter_modules(model) if hasattr(module, "record_attention")]
    before = [module.record_attention for module in modules]
    for module in modules:
        module.record_attention = True
    try:
        yield
    finally:
        for module, on in zip(modules, before):
            module.record_attention = on


class MultiHeadSelfAttention(nnx.Module):
    """Project to `heads` query/key/value heads and attend (HF `BertSelfAttention`).

    (batch, seq, hidden) → (batch, seq, heads·head_dim): the heads, concatenated, before the output
    projection (which lives in the post-LN sublayer output, `attention.output`)."""

    def __init__(self, hidden_size: int, num_heads: int, *, dropout: float, init_std: float = 0.02,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        self.num_heads = num_heads
        self.attention_implementation = "reference"
        self.record_attention = False
        linear = dict(init_std=init_std, dtype=dtype, rngs=rngs)
        self.query = Linear(hidden_size, hidden_size, **linear)
        self.key = Linear(hidden_size, hidden_size, **linear)
        self.value = Linear(hidden_size, hidden_size, **linear)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
        split = lambda t: t.reshape(*t.shape[:-1], self.num_heads, -1)  # (b, s, h·d) → (b, s, h, d)
        out = dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)),
                                    dropout=self.dropout, mask=mask, implementation=self.attention_implementation,
                                    recorder=self)
        return out.reshape(*x.shape[:-1], -1)
