"""ModernBERT: a pre-norm encoder with rotary positions, alternating global/local attention and GeGLU.

Warner et al., "Smarter, Better, Faster, Longer: A Modern Bidirectional Encoder for Fast, Memory Efficient, and
Long Context Finetuning and Inference" (2024, arXiv 2412.13663).
    §2.1.1  no bias terms in linear layers and norms (only the MLM decoder's); embeddings = LayerNorm(tokens)
    §2.1.1  rotary position embeddings (RoPE) instead of absolute positions                 → nn/rope.py
    §2.1.1  pre-norm layers, h = x + Attn(LN(x)); out = h + MLP(LN(h)); layer 0 has no attention norm
            (the embeddings were just normalised) and a final LayerNorm follows the last layer
    §2.1.1  GeGLU feed-forward: Wo(GELU(x Wi_in) ⊙ x Wi_gate)                                → nn/feedforward.py
    §2.1.2  alternating attention: every third layer global (RoPE θ = 160 000), the others a sliding window
            of `local_attention` tokens, half on each side (RoPE θ = 10 000)                 → nn/attention.py
    §2.1.2  unpadding: padding removed before the encoder, restored after                    → nn/packing.py
Module attribute names are Hugging Face's (`model.layers.3.attn.Wqkv.weight`, `head.dense.weight`, `decoder.bias`),
so parameter paths are checkpoint keys.

Inputs. ModernBERT has no token types: `token_type_ids` must be absent or all zero. `attention_mask` is 0/1
visibility only: a 0 anywhere in a row hides that token and nothing else; rotary positions stay 0 … seq−1 as in
`transformers`, holes included. Packed rows — several documents back to back in one row — are the separate
`segment_ids` (batch, seq): 1, 2, … per document, 0 for padding; attention then stays inside a document and rotary
positions restart at each one. `position_ids` (batch, seq), optional, override the positions (default
`positions_from_segments(segment_ids)` for packed rows, else 0 … seq−1). See nn/packing.py. Hidden states follow
Hugging Face: the embeddings, then each layer's output, the last one after `final_norm` (so `hidden_states[-1]`
is `last_hidden_state`).

Unpadding. With `unpad = True` on `ModernBertModel` (`model.model.unpad` in the MLM model), the real tokens of
the batch are gathered into one row of `token_capacity` slots (None: batch·seq) before the embeddings; every
per-token layer (projections, GeGLU, norms, the MLM head) runs on that row, and attention runs per batch row
on the re-padded queries/keys/values. Outputs are re-padded (zeros at padding) and equal the padded path at
real tokens.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from minibert import losses
from minibert.config import PretrainedConfig
from minibert.models.base import PreTrainedModel
from minibert.models.heads import select_masked
from minibert.models.outputs import ModelOutput
from minibert.nn.activations import activation
from minibert.nn.attention import document_mask, dot_product_attention, window_mask
from minibert.nn.embeddings import Embedding
from minibert.nn.feedforward import glu
from minibert.nn.linear import Linear
from minibert.nn.norms import LayerNorm
from minibert.nn.packing import Unpadded, check_capacity, default_positions, pack, repad, unpad
from minibert.nn.rope import apply_rotary
from minibert.nn.tied_decoder import TiedDecoder

FULL, SLIDING = "full_attention", "sliding_attention"
# the `config.json` keys transformers 4.x wrote for each layer type's RoPE θ, and their defaults (§2.1.2)
LEGACY_ROPE_THETA = {FULL: ("global_rope_theta", 160_000.0), SLIDING: ("local_rope_theta", 10_000.0)}
GLOBAL_EVERY = 3  # §2.1.2: every third layer attends globally (transformers 4.x's `global_attn_every_n_layers`)


@dataclasses.dataclass
class ModernBertConfig(PretrainedConfig):
    """ModernBERT hyper-parameters, Hugging Face names and defaults (ModernBERT-base: 22 layers, H=768, A=12).

    Reads both `config.json` dialects. transformers 5 writes `layer_types` (one of "full_attention" /
    "sliding_attention" per layer) and `rope_parameters` ({layer type: {"rope_type": "default", "rope_theta": θ}}).
    The published checkpoints (transformers 4.x) carry `global_attn_every_n_layers` (layer i is global when
    i % n == 0), `global_rope_theta` and `local_rope_theta` instead; `from_dict` converts them, and keeps them in
    `extra` (written back unchanged, as transformers 5 does), while `layer_types` and `rope_parameters`, filled in
    from them, are what the model uses and what is saved."""

    model_type: ClassVar[str] = "modernbert"

    vocab_size: int = 50368
    hidden_size: int = 768
    intermediate_size: int = 1152
    num_hidden_layers: int = 22
    num_attention_heads: int = 12
    hidden_activation: str = "gelu"
    max_position_embeddings: int = 8192
    initializer_range: float = 0.02
    norm_eps: float = 1e-5
    norm_bias: bool = False
    pad_token_id: int | None = 50283
    attention_bias: bool = False
    attention_dropout: float = 0.0
    layer_types: list[str] | None = None
    rope_parameters: dict[str, Any] | None = None
    local_attention: int = 128
    embedding_dropout: float = 0.0
    mlp_bias: bool = False
    mlp_dropout: float = 0.0
    decoder_bias: bool = True
    classifier_pooling: str = "cls"          # the task heads' sequence vector: "cls" or "mean" (models/task_heads.py)
    classifier_dropout: float = 0.0
    classifier_bias: bool = False
    classifier_activation: str = "gelu"
    tie_word_embeddings: bool = True

    @classmethod
    def from_dict(cls, values):
        """transformers 4.x's dialect converted: `global_attn_every_n_layers` → `layer_types`, `global_rope_theta` /
        `local_rope_theta` → `rope_parameters` (the legacy keys stay in `extra`)."""
        if values.get("layer_types") is None:
            every = values.get("global_attn_every_n_layers", GLOBAL_EVERY)
            layers = values.get("num_hidden_layers", cls.num_hidden_layers)
            values = {**values, "layer_types": [SLIDING if i % every else FULL for i in range(layers)]}
        thetas = {layer_type: values[key] for layer_type, (key, _) in LEGACY_ROPE_THETA.items() if key in values}
        if thetas:
            rope = dict(values.get("rope_parameters") or {})
            for layer_type, theta in thetas.items():
                rope[layer_type] = {"rope_theta": theta, **(rope.get(layer_type) or {})}
            values = {**values, "rope_parameters": rope}
        return super().from_dict(values)

    def __post_init__(self):
        if self.layer_types is None:
            self.layer_types = [SLIDING if i % GLOBAL_EVERY else FULL for i in range(self.num_hidden_layers)]
        self.rope_parameters = self._rope_parameters()

    def validate(self) -> None:
        super().validate()
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                             f"{self.num_attention_heads}")
        if self.head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head size, got {self.head_dim}")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id {self.pad_token_id} is outside the vocabulary [0, {self.vocab_size})")
        if len(self.layer_types) != self.num_hidden_layers or set(self.layer_types) - {FULL, SLIDING}:
            raise ValueError(f"layer_types must list {FULL!r} or {SLIDING!r} for each of the {self.num_hidden_layers} "
                             f"layers, got {self.layer_types}")

    def _rope_parameters(self) -> dict[str, dict[str, Any]]:
        """{layer type: {"rope_type": "default", "rope_theta": θ}}, θ as given, else the paper's (§2.1.2)."""
        if self.extra.get("rope_scaling") is not None:
            raise ValueError(f"rope_scaling {self.extra['rope_scaling']} is not supported: minibert implements "
                             f"plain RoPE")
        given = dict(self.rope_parameters or {})
        if set(given) - {FULL, SLIDING}:
            raise ValueError(f"rope_parameters must be keyed by layer type ({FULL!r}, {SLIDING!r}), got {given}")
        rope = {}
        for layer_type, (_, default) in LEGACY_ROPE_THETA.items():
            params = {"rope_type": "default", **(given.get(layer_type) or {})}
            params.setdefault("rope_theta", default)
            if params["rope_type"] != "default":
                raise ValueError(f"rope_type {params['rope_type']!r} ({layer_type}) is not supported: only 'default'")
            rope[layer_type] = params
        return rope

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def init_stds(self) -> dict[str, float]:
        """Initialisation std of each kind of weight (as Hugging Face's `_init_weights`): projections into the
        residual stream are scaled down by √(2·layers)."""
        return {"in": self.initializer_range, "out": self.initializer_range / math.sqrt(2.0 * self.num_hidden_layers)}


class ModernBertEmbeddings(nnx.Module):
    """Dropout(LayerNorm(tok_embeddings[ids])): (…, seq) → (…, seq, hidden). No positions: RoPE adds them."""

    def __init__(self, config: ModernBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.tok_embeddings = Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id,
                                        init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.norm = LayerNorm(c.hidden_size, eps=c.norm_eps, use_bias=c.norm_bias, dtype=dtype)
        self.drop = nnx.Dropout(c.embedding_dropout, rngs=rngs)

    def __call__(self, input_ids: jax.Array | None, inputs_embeds: jax.Array | None = None) -> jax.Array:
        """`inputs_embeds` (…, seq, hidden), when given instead of input_ids, replaces tok_embeddings[input_ids]."""
        x = self.tok_embeddings(input_ids) if inputs_embeds is None else inputs_embeds.astype(self.tok_embeddings.dtype)
        return self.drop(self.norm(x))


class ModernBertAttention(nnx.Module):
    """Multi-head self-attention with rotary q/k: Wo(Attention(RoPE(q), RoPE(k), v)).

    One fused projection `Wqkv` (hidden → 3·hidden, laid out [q | k | v], each heads × head_dim). Global layers
    rotate with θ = `rope_parameters["full_attention"]`, local ones with the sliding θ; which keys are visible
    (documents, window) is the `mask` the encoder built for this layer's type. x: (batch, seq, hidden), or
    (1, capacity, hidden) when `unpadded` is given: attention itself then runs on the re-padded rows."""

    def __init__(self, config: ModernBertConfig, layer_type: str, *, dtype, rngs: nnx.Rngs):
        c, std = config, config.init_stds()
        self.num_heads = c.num_attention_heads
        self.rope_theta = c.rope_parameters[layer_type]["rope_theta"]
        self.attention_implementation = "reference"
        self.record_attention = False
        self.Wqkv = Linear(c.hidden_size, 3 * c.hidden_size, use_bias=c.attention_bias, init_std=std["in"],
                           dtype=dtype, rngs=rngs)
        self.Wo = Linear(c.hidden_size, c.hidden_size, use_bias=c.attention_bias, init_std=std["out"], dtype=dtype,
                         rngs=rngs)
        self.attn_drop = nnx.Dropout(c.attention_dropout, rngs=rngs)
        self.out_drop = nnx.Dropout(c.attention_dropout, rngs=rngs)

    def __call__(self, x: jax.Array, positions: jax.Array, mask: jax.Array, unpadded: Unpadded | None) -> jax.Array:
        qkv = self.Wqkv(x).reshape(*x.shape[:-1], 3, self.num_heads, -1)  # (b, s, 3, heads, head_dim)
        q, k, v = qkv[..., 0, :, :], qkv[..., 1, :, :], qkv[..., 2, :, :]
        q, k = apply_rotary(q, positions, self.rope_theta), apply_rotary(k, positions, self.rope_theta)
        if unpadded is not None:
            q, k, v = (repad(t, unpadded) for t in (q, k, v))
        out = dot_product_attention(q, k, v, dropout=self.attn_drop, mask=mask,
                                    implementation=self.attention_implementation, recorder=self)
        if unpadded is not None:
            out = pack(out, unpadded)
        return self.out_drop(self.Wo(out.reshape(*x.shape[:-1], -1)))


class ModernBertMLP(nnx.Module):
    """GeGLU feed-forward (§2.1.1): Wo(Dropout(act(x Wi_in) ⊙ x Wi_gate)), Wi: hidden → 2·intermediate."""

    def __init__(self, config: ModernBertConfig, *, dtype, rngs: nnx.Rngs):
        c, std = config, config.init_stds()
        self.Wi = Linear(c.hidden_size, 2 * c.intermediate_size, use_bias=c.mlp_bias, init_std=std["in"], dtype=dtype,
                         rngs=rngs)
        self.act = activation(c.hidden_activation)
        self.drop = nnx.Dropout(c.mlp_dropout, rngs=rngs)
        self.Wo = Linear(c.intermediate_size, c.hidden_size, use_bias=c.mlp_bias, init_std=std["out"], dtype=dtype,
                         rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.Wo(self.drop(glu(self.Wi(x), self.act)))


class ModernBertEncoderLayer(nnx.Module):
    """Pre-norm layer: h = x + Attn(attn_norm(x)); out = h + MLP(mlp_norm(h)). Layer 0 has no `attn_norm`."""

    def __init__(self, config: ModernBertConfig, layer_id: int, *, dtype, rngs: nnx.Rngs):
        c = config
        self.attention_type = c.layer_types[layer_id]
        self.attn_norm = None if layer_id == 0 else LayerNorm(c.hidden_size, eps=c.norm_eps, use_bias=c.norm_bias,
                                                              dtype=dtype)
        self.attn = ModernBertAttention(c, self.attention_type, dtype=dtype, rngs=rngs)
        self.mlp_norm = LayerNorm(c.hidden_size, eps=c.norm_eps, use_bias=c.norm_bias, dtype=dtype)
        self.mlp = ModernBertMLP(c, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, positions: jax.Array, masks: dict[str, jax.Array],
                 unpadded: Unpadded | None) -> jax.Array:
        h = x if self.attn_norm is None else self.attn_norm(x)
        x = x + self.attn(h, positions, masks[self.attention_type], unpadded)
        return x + self.mlp(self.mlp_norm(x))


class _ModernBertPreTrainedModel(PreTrainedModel):
    config_class = ModernBertConfig

    def check_inputs(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray, *,
                     segment_ids: np.ndarray | None = None, position_ids: np.ndarray | None = None) -> None:
        super().check_inputs(input_ids, attention_mask, token_type_ids, segment_ids=segment_ids,
                             position_ids=position_ids)
        if token_type_ids.any():
            raise ValueError("ModernBERT has no token types: pass token_type_ids=None (or all zeros)")
        encoder = self if isinstance(self, ModernBertModel) else self.model
        if encoder.unpad:
            check_capacity(attention_mask, encoder.token_capacity, segment_ids)


class ModernBertModel(_ModernBertPreTrainedModel):
    """The encoder: (batch, seq) ids → last_hidden_state (batch, seq, hidden), after `final_norm`."""

    is_base_model = True

    def __init__(self, config: ModernBertConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        config.validate()
        rngs = rngs or nnx.Rngs(0)
        c = config
        self.config = config
        self.unpad = False
        self.token_capacity: int | None = None
        self.embeddings = ModernBertEmbeddings(c, dtype=dtype, rngs=rngs)
        self.layers = nnx.List([ModernBertEncoderLayer(c, i, dtype=dtype, rngs=rngs)
                                for i in range(c.num_hidden_layers)])
        self.final_norm = LayerNorm(c.hidden_size, eps=c.norm_eps, use_bias=c.norm_bias, dtype=dtype)

    def encode(self, input_ids: jax.Array | None, attention_mask: jax.Array, segment_ids: jax.Array | None = None,
               position_ids: jax.Array | None = None,
               inputs_embeds: jax.Array | None = None) -> tuple[jax.Array, list[jax.Array], Unpadded | None]:
        """The encoder in its working layout: (batch, seq, hidden) tensors, or (1, capacity, hidden) when unpadding,
        with the `Unpadded` record that `repad` needs (None when not unpadding). Returns the last hidden state
        and the hidden states (embeddings, then each layer, the last after `final_norm`)."""
        seq = attention_mask.shape[1]
        document = document_mask(attention_mask, segment_ids)      # visible keys of the query's own document
        half_window = self.config.local_attention // 2              # §2.1.2: local_attention tokens, half each side
        masks = {FULL: document, SLIDING: document & window_mask(seq, half_window, half_window)}
        # 0 … seq−1 per row, holes included (as transformers); restarting at 0 in every packed document
        positions = default_positions(segment_ids, attention_mask.shape) if position_ids is None else position_ids
        unpadded = None
        if self.unpad:  # the real tokens' ids (or embeddings) in a (1, capacity, …) row
            tokens, unpadded = unpad(input_ids if inputs_embeds is None else inputs_embeds, attention_mask,
                                     self.token_capacity, segment_ids)
            input_ids, inputs_embeds = (tokens, None) if inputs_embeds is None else (None, tokens)
            positions = pack(positions, unpadded)
        x = self.embeddings(input_ids, inputs_embeds)
        states = [x]
        for layer in self.layers:
            x = layer(x, positions, masks, unpadded)
            states.append(x)
        states[-1] = x = self.final_norm(x)
        return x, states, unpadded

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, segment_ids=None,
                position_ids=None, inputs_embeds=None):
        last, states, unpadded = self.encode(input_ids, attention_mask, segment_ids, position_ids, inputs_embeds)
        rows = (lambda t: t) if unpadded is None else (lambda t: repad(t, unpadded))
        return ModelOutput(last_hidden_state=rows(last),
                           hidden_states=tuple(map(rows, states)) if output_hidden_states else None)


class ModernBertPredictionHead(nnx.Module):
    """norm(act(dense(h))): the MLM head's transform, (…, hidden) → (…, hidden)."""

    def __init__(self, config: ModernBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.dense = Linear(c.hidden_size, c.hidden_size, use_bias=c.classifier_bias, init_std=c.init_stds()["out"],
                            dtype=dtype, rngs=rngs)
        self.act = activation(c.classifier_activation)
        self.norm = LayerNorm(c.hidden_size, eps=c.norm_eps, use_bias=c.norm_bias, dtype=dtype)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        return self.norm(self.act(self.dense(hidden)))


class ModernBertForMaskedLM(_ModernBertPreTrainedModel):
    """ModernBERT with its MLM head: logits (batch, seq, vocab) = decoder(head(h)); loss = MLM cross-entropy given
    `labels` (-100 = not predicted). When unpadding, the head runs on the real tokens only; given
    `masked_positions` (batch, n), on those positions only: logits (batch, n, vocab), `labels` (batch, n)."""

    base_model_prefix = "model"
    ignored_checkpoint_keys = (r"^decoder\.weight$",)  # the tied copy, when tied

    def __init__(self, config: ModernBertConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        self.model = ModernBertModel(config, dtype=dtype, rngs=rngs)
        self.head = ModernBertPredictionHead(config, dtype=dtype, rngs=rngs)
        self.decoder = TiedDecoder(config.hidden_size, config.vocab_size, tied=config.tie_word_embeddings,
                                   use_bias=config.decoder_bias, init_std=config.init_stds()["out"], dtype=dtype,
                                   rngs=rngs)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, segment_ids=None,
                position_ids=None, labels=None, masked_positions=None, inputs_embeds=None):
        last, states, unpadded = self.model.encode(input_ids, attention_mask, segment_ids, position_ids, inputs_embeds)
        rows = (lambda t: t) if unpadded is None else (lambda t: repad(t, unpadded))
        tok_embeddings = self.model.embeddings.tok_embeddings.weight[...]
        if masked_positions is None:   # dense: the head on every token of the working layout, re-padded
            logits = rows(self.decoder(self.head(last), tok_embeddings))
        else:                          # sparse: the head on the masked positions only
            logits = self.decoder(self.head(select_masked(rows(last), masked_positions, labels)), tok_embeddings)
        return ModelOutput(last_hidden_state=rows(last),
                           hidden_states=tuple(map(rows, states)) if output_hidden_states else None,
                           logits=logits,
                           loss=None if labels is None else losses.masked_lm_loss(logits, labels))
