"""Flex: one encoder whose every part is a config choice among the BERT family's ideas, each taken from its nn/ module.

The families (models/bert.py, mosaicbert.py, modernbert.py, ...) are fixed combinations of a few ideas; here each idea
is a field of `FlexConfig`, and the model is the composition the config names:

    field            choices                     the idea, and where it lives
    positions        learned | alibi | rope      BERT's table (nn/embeddings.py) | ALiBi, Press et al. 2022
                                                 (nn/alibi.py) | RoPE, Su et al. 2021 (nn/rope.py)
    attention        full | local_global         every layer global | ModernBERT's alternation: every n-th layer
                                                 global, the others a sliding window (nn/attention.py)
    span_conv_kernel 0 | k                       attention only | ConvBERT's mixed attention: heads / head_ratio
                                                 attention heads beside as many span-based dynamic convolution
                                                 heads of kernel k (Jiang et al. 2020, §3.3; nn/dynamic_conv.py)
    ffn              mlp | glu | geglu           act(x W₁) W₂ | (σ(x W) ⊙ x V) W₂ | (act(x W) ⊙ x V) W₂: GLU and,
                                                 with act a GELU, GeGLU (Shazeer 2020; nn/feedforward.py `glu`)
    num_feedforward_networks 1 | F               F FFN sublayers per layer, each with its residual and norm
                                                 (MobileBERT's stacked FFNs, Sun et al. 2020 §3.2)
    intra_bottleneck_size 0 | B                  every layer at width H | MobileBERT's bottleneck block: N(x W_in)
                                                 narrows to B, the sublayers work at B, N(x + h W_out) widens back
                                                 (§3.1, queries, keys and values from the bottleneck; nn/bottleneck.py)
    norm             post | pre                  LN(x + F(x)) (BERT) | x + F(LN(x)) (ModernBERT)
    norm_type        layer_norm | no_norm        LayerNorm | MobileBERT's NoNorm γ∘h + β (nn/norms.py)
    bias             true | false                biases in every linear map and norm (ModernBERT: none)
    embedding_size   0 | E                       a V×E table and an E×H map (ALBERT, ELECTRA; nn/embeddings.py)
    type_vocab_size  0 | n                       no token types (ModernBERT) | n of them
    unpad            true | false                real tokens only, in one row (nn/packing.py)

One layer contract. `FlexModel.context` builds, once per forward pass, a `FlexContext`: which keys each query may
see (global and, for local layers, windowed), the ALiBi bias, the positions RoPE rotates by, and the unpadded layout.
Every layer is `layer(x, context)`. With `unpad` the tokens are unpadded before the embeddings and re-padded after
the last layer (and the MLM head) only; attention re-pads q, k, v inside to attend per row, as MosaicBERT and
ModernBERT do.

Shapes: input_ids (batch, seq) → hidden (batch, seq, hidden) — (1, capacity, hidden) between the layers when
unpadding — → MLM logits (batch, seq, vocab). hidden_states: the embeddings (after the E → H map), then each
layer's output, the last one after `final_norm` for pre-LN (as ModernBERT), so `hidden_states[-1]` is
`last_hidden_state`.

Heads and objectives: `FlexForMaskedLM` (mlm), `FlexForPreTraining` (mlm+nsp: BERT's NSP classifier on the pooler;
mlm+sop: the same classifier on ALBERT's sentence order),
`FlexForReplacedTokenDetection` trained by `FlexPretrainer` (rtd: ELECTRA's generator and discriminator sharing the
embeddings), and the four task heads (models/finetuning.py). `minibert pretrain --family flex --objective …
--set positions=rope,ffn=geglu,norm=pre` (or `--config FILE`) trains any combination.

Reproductions. `flex_from(model)` maps a BERT, ConvBERT, MobileBERT (the configs Flex expresses: `_mobilebert`),
MosaicBERT or ModernBERT masked LM onto the Flex model that computes the same function (their weights under Flex's
names; a bias Flex has and the family lacks is zero), and `preset(name)` is the Flex config of each family's
defaults. Dropout sits on each sublayer's output (BERT's place); MosaicBERT and ModernBERT drop inside the FFN
instead, and MobileBERT's bottleneck blocks only on the way out, so the reproductions are exact in eval mode, the
same model with dropout placed differently in training.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from minibert import losses, rtd
from minibert.checkpoints.hf import model_state_dict
from minibert.config import BertConfig, PretrainedConfig
from minibert.models.base import PreTrainedModel
from minibert.models.bert import BertForMaskedLM
from minibert.models.convbert import ConvBertConfig, ConvBertForMaskedLM
from minibert.models.electra import ElectraDiscriminatorPredictions, ElectraForPreTraining, ElectraPretrainer
from minibert.models.heads import NextSentencePredictionHead, Pooler, select_masked
from minibert.models.mobilebert import TORCH_DEFAULT_EPS, MobileBertConfig, MobileBertForMaskedLM
from minibert.models.modernbert import FULL, SLIDING, ModernBertConfig, ModernBertForMaskedLM
from minibert.models.mosaicbert import MosaicBertConfig, MosaicBertForMaskedLM
from minibert.models.outputs import ModelOutput
from minibert.nn.activations import ACTIVATIONS, activation
from minibert.nn.alibi import alibi_bias, alibi_slopes
from minibert.nn.attention import document_mask, dot_product_attention, window_mask
from minibert.nn.bottleneck import BottleneckProjection, ResidualProjection
from minibert.nn.dynamic_conv import SeparableConv1D, span_based_dynamic_convolution
from minibert.nn.embeddings import EmbeddingProjection, Embeddings
from minibert.nn.feedforward import glu
from minibert.nn.linear import Linear
from minibert.nn.norms import normalization
from minibert.nn.packing import Unpadded, check_capacity, default_positions, pack, repad, unpad
from minibert.nn.rope import apply_rotary
from minibert.nn.tied_decoder import TiedDecoder

CHOICES = {"positions": ("learned", "alibi", "rope"), "attention": ("full", "local_global"),
           "ffn": ("mlp", "glu", "geglu"), "norm": ("post", "pre"), "norm_type": ("layer_norm", "no_norm")}


@dataclasses.dataclass
class FlexConfig(PretrainedConfig):
    """Which idea each part of the encoder is (the table above); defaults: BERT-base (Devlin et al. 2019, §3).
    Every field is a str, int, bool or float, so "positions=rope,ffn=geglu,norm=pre" overrides parse by type."""

    model_type: ClassVar[str] = "flex"

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072             # the FFN's inner width (of each stacked FFN)
    num_feedforward_networks: int = 1         # FFN sublayers per layer (MobileBERT: 4)
    intra_bottleneck_size: int = 0            # B, the sublayers' width inside a bottleneck block; 0: no bottleneck
    hidden_act: str = "gelu"                  # the FFN's activation ("geglu": its gate's) and the MLM head's
    embedding_size: int = 0                   # E, the token table's width; 0: the hidden size (no E → H map)
    type_vocab_size: int = 2                  # token types; 0: none
    positions: str = "learned"                # learned | alibi | rope
    max_position_embeddings: int = 512        # the longest input (and the learned table's rows)
    rope_theta: float = 10_000.0              # RoPE θ of the global layers
    local_rope_theta: float = 10_000.0        # RoPE θ of the local layers
    attention: str = "full"                   # full | local_global
    local_attention: int = 128                # a local layer's window: local_attention // 2 keys each side
    global_attn_every_n_layers: int = 3       # local_global: layer i is global when i % n == 0
    span_conv_kernel: int = 0                 # ConvBERT's mixed attention, kernel k (odd); 0: attention only
    head_ratio: int = 2                       # mixed attention: num_attention_heads // head_ratio heads of each kind
    ffn: str = "mlp"                          # mlp | glu | geglu
    norm: str = "post"                        # post | pre
    norm_type: str = "layer_norm"             # layer_norm | no_norm
    bias: bool = True                         # biases in the linear maps and norms (the decoder keeps its own)
    unpad: bool = False                       # run the per-token layers on the real tokens only
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True

    classifier_dropout = property(lambda self: None)   # the task heads' dropout: hidden_dropout_prob

    @property
    def embedding_width(self) -> int:
        """E: `embedding_size`, or the hidden size when it is 0."""
        return self.embedding_size or self.hidden_size

    @property
    def block_width(self) -> int:
        """The width the attention and FFN sublayers work at: `intra_bottleneck_size`, or the hidden size."""
        return self.intra_bottleneck_size or self.hidden_size

    @property
    def padding_visible(self) -> bool:
        """Whether right padding changes the outputs at real positions (the span convolution reads its neighbours,
        padding included, as ConvBERT's): host calls are then never bucketed (models/host.py)."""
        return self.span_conv_kernel > 0

    @property
    def attention_heads(self) -> int:
        """h, the attention heads: num_attention_heads, or with mixed attention num_attention_heads // head_ratio
        (at least 1; as many convolution heads beside them)."""
        heads = self.num_attention_heads
        return max(1, heads // self.head_ratio) if self.span_conv_kernel else heads

    @property
    def head_dim(self) -> int:
        """d, each head's width: block_width / h, or half that with mixed attention (h attention + h conv heads fill
        it)."""
        return self.block_width // self.attention_heads // (2 if self.span_conv_kernel else 1)

    def validate(self) -> None:
        """TypeError for a field of the wrong type; ValueError naming the field for a value or a combination the nn/
        modules cannot express."""
        super().validate()
        for field, choices in CHOICES.items():
            if getattr(self, field) not in choices:
                raise ValueError(f"{field} {getattr(self, field)!r} is not one of {', '.join(choices)}")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not one of {', '.join(sorted(ACTIVATIONS))}")
        for field in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                      "max_position_embeddings", "global_attn_every_n_layers", "num_feedforward_networks"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be positive, got {getattr(self, field)}")
        for field in ("embedding_size", "type_vocab_size", "local_attention", "span_conv_kernel",
                      "intra_bottleneck_size"):
            if getattr(self, field) < 0:
                raise ValueError(f"{field} must be ≥ 0, got {getattr(self, field)}")
        for field in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, field) < 1.0:
                raise ValueError(f"{field} must be in [0, 1), got {getattr(self, field)}")
        width = "intra_bottleneck_size" if self.intra_bottleneck_size else "hidden_size"
        if self.block_width % self.num_attention_heads:
            raise ValueError(f"{width} {self.block_width} is not a multiple of num_attention_heads "
                             f"{self.num_attention_heads}")
        if self.intra_bottleneck_size and self.norm == "pre":
            raise ValueError("intra_bottleneck_size needs norm=post: MobileBERT's output bottleneck (nn/bottleneck.py "
                             "ResidualProjection) closes each block with N(x + h W_out), a post-LN residual")
        if self.span_conv_kernel:
            if self.span_conv_kernel % 2 == 0 or self.head_ratio < 1:
                raise ValueError(f"span_conv_kernel must be odd (the span is centred on its token) and head_ratio "
                                 f"≥ 1, got {self.span_conv_kernel}, {self.head_ratio}")
            if self.block_width % (2 * self.attention_heads):
                raise ValueError(f"{width} {self.block_width} must be a multiple of 2 × {self.attention_heads} "
                                 f"heads for mixed attention: half of each head's width attends, half convolves")
            if self.unpad:
                raise ValueError("span_conv_kernel with unpad is not supported: the span convolution reads the padding "
                                 "tokens' states beside a real token (as ConvBERT's), unpadding would make them zero")
            if not self.bias:
                raise ValueError("span_conv_kernel needs bias=true: the span-aware key's separable convolution "
                                 "(nn/dynamic_conv.py SeparableConv1D) always has its bias")
        if self.positions == "rope" and self.head_dim % 2:
            raise ValueError(f"positions 'rope' rotates pairs of dimensions: the head size (hidden_size / heads, "
                             f"halved with mixed attention) must be even, got {self.head_dim}")
        if self.positions == "rope" and min(self.rope_theta, self.local_rope_theta) <= 0:
            raise ValueError(f"rope_theta and local_rope_theta must be positive, got {self.rope_theta}, "
                             f"{self.local_rope_theta}")
        if self.norm_type == "no_norm" and not self.bias:
            raise ValueError("norm_type 'no_norm' needs bias=true: NoNorm is γ ∘ h + β, its β always there")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id {self.pad_token_id} is outside the vocabulary [0, {self.vocab_size})")


def norm(config: FlexConfig, features: int, *, dtype):
    """The config's norm over `features`: LayerNorm (eps, bias with `bias`) or NoNorm."""
    return normalization(config.norm_type, features, eps=config.layer_norm_eps, use_bias=config.bias, dtype=dtype)


@struct.dataclass
class FlexContext:
    """What every layer needs besides its input, built once per forward pass (`FlexModel.context`).

    mask: (batch, 1, 1 | seq, seq) bool, the keys each query may see (visible, of its own document);
    local_mask: mask ∧ |i − j| ≤ local_attention // 2, for the local layers; None without them;
    alibi: (batch, heads, seq, seq) float32, −m_h·|p_i − p_j|; None unless positions = "alibi";
    positions: (batch, seq) int32, p_i: RoPE's angles p_i·θ (and the learned table's rows);
    unpadded: where the real tokens sit in the (1, capacity) row; None unless unpad."""

    mask: jax.Array
    local_mask: jax.Array | None
    alibi: jax.Array | None
    positions: jax.Array
    unpadded: Unpadded | None

    def padded(self, x: jax.Array) -> jax.Array:
        """x in the layers' layout → (batch, seq, ...), zeros at padding: `repad` when unpadding, else x."""
        return x if self.unpadded is None else repad(x, self.unpadded)


class FlexAttention(nnx.Module):
    """Multi-head self-attention (Vaswani et al. 2017, §3.2): [Q | K | V] = x W_qkv; q, k rotated by RoPE (positions
    "rope", θ of the layer's kind); softmax(q kᵀ/√d + ALiBi, masked) v per row; the heads concatenated, then W_o.
    x: (batch, seq, block_width), or (1, capacity, block_width) when unpadded: q, k, v are then re-padded to
    (batch, seq, heads, head_dim) to attend per row, and the heads packed back. → x's shape.

    Mixed attention (`span_conv_kernel` k, ConvBERT §3.3): beside the h attention heads, h convolution heads
    Conv(Q, V'; i) = Σ_j softmax(W_f (Q ⊙ K_s))_{i,j} V'_{i+j−⌈(k+1)/2⌉}, K_s = SepConv(x) the span-aware key,
    V' = x W_v' (nn/dynamic_conv.py); W_o reads [attention heads | convolution heads]."""

    def __init__(self, config: FlexConfig, local: bool, *, dtype, rngs: nnx.Rngs):
        c = config
        self.num_heads = c.attention_heads
        self.local = local
        self.rope_theta = (c.local_rope_theta if local else c.rope_theta) if c.positions == "rope" else None
        self.attention_implementation = "reference"
        self.record_attention = False
        linear = dict(use_bias=c.bias, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        width = self.num_heads * c.head_dim                         # h·d: block_width, or half with conv
        self.Wqkv = Linear(c.block_width, 3 * width, **linear)
        self.Wo = Linear(c.block_width, c.block_width, **linear)
        self.dropout = nnx.Dropout(c.attention_probs_dropout_prob, rngs=rngs)
        mixed = c.span_conv_kernel > 0                                          # ConvBERT's mixed attention:
        self.span_key = (SeparableConv1D(c.block_width, width, c.span_conv_kernel, init_std=c.initializer_range,
                                         dtype=dtype, rngs=rngs) if mixed else None)                  # K_s = SepConv(x)
        self.conv_kernel = Linear(width, self.num_heads * c.span_conv_kernel, **linear) if mixed else None   # W_f
        self.conv_value = Linear(c.block_width, width, **linear) if mixed else None                  # V' = x W_v'

    def __call__(self, x: jax.Array, context: FlexContext) -> jax.Array:
        qkv = context.padded(self.Wqkv(x))                                       # (b, s, 3·h·d)
        qkv = qkv.reshape(*qkv.shape[:2], 3, self.num_heads, -1)                 # (b, s, 3, h, d): [q | k | v]
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if self.rope_theta is not None:                            # f(x, m) = x∘cos(mθ) + rotate_half(x)∘sin(mθ)
            q, k = (apply_rotary(t, context.positions, self.rope_theta) for t in (q, k))
        out = dot_product_attention(q, k, v, context.alibi, self.dropout,
                                    mask=context.local_mask if self.local else context.mask,
                                    implementation=self.attention_implementation, recorder=self)  # (b, s, h, d)
        if self.span_key is not None:                # + h conv heads (b, s, h, d); never unpadded (validate)
            value = self.conv_value(x).reshape(*x.shape[:2], self.num_heads, -1)          # V' (b, s, h, d)
            query = qkv[:, :, 0].reshape(*x.shape[:2], -1)                               # Q before RoPE (b, s, h·d)
            conv = span_based_dynamic_convolution(query, self.span_key(x), value, self.conv_kernel)
            out = jnp.concatenate([out, conv], axis=2)                                   # (b, s, 2h, d)
        out = out.reshape(*out.shape[:2], -1)                                    # Concat(head_1..head_h)
        return self.Wo(out if context.unpadded is None else pack(out, context.unpadded))


class FlexFeedForward(nnx.Module):
    """Position-wise FFN (Vaswani et al. 2017, §3.3): "mlp" W_o act(W_i x); "glu" W_o (σ(x W) ⊙ x V) with
    W_i = [W | V] (Dauphin et al. 2017; Shazeer 2020, Eq. 4 "GLU"); "geglu" W_o (act(x W) ⊙ x V), Shazeer's GEGLU
    with `hidden_act` a GELU (SwiGLU with "silu"). (..., block_width) → (..., block_width)."""

    def __init__(self, config: FlexConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.gated = c.ffn != "mlp"
        self.act = activation("sigmoid" if c.ffn == "glu" else c.hidden_act)
        linear = dict(use_bias=c.bias, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.Wi = Linear(c.block_width, (2 if self.gated else 1) * c.intermediate_size, **linear)
        self.Wo = Linear(c.intermediate_size, c.block_width, **linear)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.Wi(x)
        return self.Wo(glu(h, self.act) if self.gated else self.act(h))


class FlexLayer(nnx.Module):
    """One encoder layer, `layer(x, context)`, (tokens…, hidden) → (tokens…, hidden):

        post:  h = N_a(x + Drop(Attn(x)));   h = N_f(h + Drop(FFN(h))) per FFN     BERT, MosaicBERT
        pre:   h = x + Drop(Attn(N_a(x)));   h = h + Drop(FFN(N_f(h))) per FFN     ModernBERT (Xiong et al. 2020)

    "Per FFN": `num_feedforward_networks` of them, one after the other (`stacked_ffns`, then `ffn`), MobileBERT §3.2.
    With a bottleneck (post-LN only), the sublayers above run at width B on b = N_in(x W_in + b_in) (`bottleneck_in`),
    and the layer returns N_out(x + Drop(h W_out + b_out)) (`bottleneck_out`), MobileBERT §3.1 with its
    `use_bottleneck_attention` (queries, keys and values all from b). The first pre-norm layer has no N_a when its
    input is the embeddings' norm's output (no E → H map between), as ModernBERT's layer 0. Layer i is local (a
    window) when attention = "local_global" and i % n ≠ 0."""

    def __init__(self, config: FlexConfig, index: int, *, dtype, rngs: nnx.Rngs):
        c = config
        self.pre = c.norm == "pre"
        local = c.attention == "local_global" and index % c.global_attn_every_n_layers != 0
        projection = dict(normalization_type=c.norm_type, eps=c.layer_norm_eps, use_bias=c.bias,
                          init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        bottleneck = c.intra_bottleneck_size
        self.bottleneck_in = BottleneckProjection(c.hidden_size, bottleneck, **projection) if bottleneck else None
        self.attention = FlexAttention(c, local, dtype=dtype, rngs=rngs)
        normed_input = self.pre and index == 0 and c.embedding_width == c.hidden_size
        self.attention_norm = None if normed_input else norm(c, c.block_width, dtype=dtype)
        stacked = range(c.num_feedforward_networks - 1)
        self.stacked_ffns = nnx.List([FlexFeedForward(c, dtype=dtype, rngs=rngs) for _ in stacked])
        self.stacked_ffn_norms = nnx.List([norm(c, c.block_width, dtype=dtype) for _ in stacked])
        self.ffn = FlexFeedForward(c, dtype=dtype, rngs=rngs)
        self.ffn_norm = norm(c, c.block_width, dtype=dtype)
        self.bottleneck_out = (ResidualProjection(bottleneck, c.hidden_size, dropout=c.hidden_dropout_prob,
                                                  **projection) if bottleneck else None)
        self.dropout = nnx.Dropout(c.hidden_dropout_prob, rngs=rngs)

    def __call__(self, x: jax.Array, context: FlexContext) -> jax.Array:
        ffns = [*zip(self.stacked_ffns, self.stacked_ffn_norms), (self.ffn, self.ffn_norm)]
        if self.pre:
            h = x + self.dropout(self.attention(x if self.attention_norm is None else self.attention_norm(x), context))
            for ffn, ffn_norm in ffns:
                h = h + self.dropout(ffn(ffn_norm(h)))
            return h
        b = x if self.bottleneck_in is None else self.bottleneck_in(x)          # (…, B) = N_in(x W_in + b_in)
        h = self.attention_norm(b + self.dropout(self.attention(b, context)))
        for ffn, ffn_norm in ffns:
            h = ffn_norm(h + self.dropout(ffn(h)))
        return h if self.bottleneck_out is None else self.bottleneck_out(h, x)  # N_out(x + Drop(h W_out + b_out))


class FlexModel(PreTrainedModel):
    """The bare encoder: embeddings (→ E → H map) → layers (→ final norm, pre-LN): (batch, seq) ids →
    last_hidden_state (batch, seq, hidden) (zeros at padding when unpadding), pooler_output (batch, hidden).
    `segment_ids` / `position_ids` (batch, seq), optional: packed documents and their positions (nn/packing.py)."""

    config_class = FlexConfig
    is_base_model = True

    def __init__(self, config: FlexConfig, *, add_pooling_layer: bool = True, dtype=jnp.float32,
                 rngs: nnx.Rngs | None = None):
        config.validate()
        rngs = rngs or nnx.Rngs(0)
        c = config
        self.config = config
        self.token_capacity: int | None = None     # static real-token budget of the unpadded row; None = batch·seq
        table = c.max_position_embeddings if c.positions == "learned" else 0      # ALiBi, RoPE: no position table
        self.embeddings = Embeddings(vocab_size=c.vocab_size, embedding_size=c.embedding_width,
                                     max_position_embeddings=table,
                                     type_vocab_size=c.type_vocab_size, layer_norm_eps=c.layer_norm_eps,
                                     dropout=c.hidden_dropout_prob, pad_token_id=c.pad_token_id, norm_type=c.norm_type,
                                     norm_bias=c.bias, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.embeddings_project = EmbeddingProjection(c.embedding_width, c.hidden_size, use_bias=c.bias,
                                                      init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.layers = nnx.List([FlexLayer(c, i, dtype=dtype, rngs=rngs) for i in range(c.num_hidden_layers)])
        self.final_norm = norm(c, c.hidden_size, dtype=dtype) if c.norm == "pre" else None
        self.pooler = (Pooler(c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
                       if add_pooling_layer else None)

    def check_inputs(self, input_ids, attention_mask, token_type_ids, *, segment_ids=None, position_ids=None) -> None:
        super().check_inputs(input_ids, attention_mask, token_type_ids, segment_ids=segment_ids,
                             position_ids=position_ids)
        if self.config.unpad:
            check_capacity(attention_mask, self.token_capacity, segment_ids)

    def context(self, attention_mask: jax.Array, segment_ids: jax.Array | None,
                position_ids: jax.Array | None) -> FlexContext:
        """The layers' context for a (batch, seq) batch (the unpadded layout is added by `encode`)."""
        c = self.config
        mask = document_mask(attention_mask, segment_ids)                        # visible keys of one's own document
        half = c.local_attention // 2                                            # window: half each side, inclusive
        local_mask = mask & window_mask(attention_mask.shape[1], half, half) if c.attention == "local_global" else None
        positions = default_positions(segment_ids, attention_mask.shape) if position_ids is None else position_ids
        alibi = alibi_bias(alibi_slopes(c.attention_heads), positions) if c.positions == "alibi" else None
        return FlexContext(mask=mask, local_mask=local_mask, alibi=alibi, positions=positions, unpadded=None)

    def encode(self, input_ids, attention_mask, token_type_ids, segment_ids=None, position_ids=None,
               inputs_embeds=None) -> tuple[list[jax.Array], FlexContext]:
        """Every hidden state in the layers' layout ((batch, seq, hidden), or (1, capacity, hidden) unpadded: the
        embeddings, then each layer's output, the last after `final_norm`) and the context (`context.padded`)."""
        context = self.context(attention_mask, segment_ids, position_ids)
        tokens = input_ids if inputs_embeds is None else inputs_embeds
        types, positions = token_type_ids, context.positions
        if self.config.unpad:                                        # (batch, seq, …) → (1, capacity, …)
            tokens, unpadded = unpad(tokens, attention_mask, self.token_capacity, segment_ids)
            types, positions = pack(types, unpadded), pack(positions, unpadded)
            context = context.replace(unpadded=unpadded)
        ids, embeds = (tokens, None) if inputs_embeds is None else (None, tokens)
        x = self.embeddings_project(self.embeddings(ids, types, embeds, positions))   # (…, E) → (…, H)
        states = [x]
        for layer in self.layers:
            x = layer(x, context)
            states.append(x)
        if self.final_norm is not None:
            states[-1] = self.final_norm(x)
        return states, context

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, segment_ids=None,
                position_ids=None, inputs_embeds=None):
        states, context = self.encode(input_ids, attention_mask, token_type_ids, segment_ids, position_ids,
                                      inputs_embeds)
        last = context.padded(states[-1])
        return ModelOutput(last_hidden_state=last, pooler_output=None if self.pooler is None else self.pooler(last),
                           hidden_states=tuple(map(context.padded, states)) if output_hidden_states else None)


class FlexMLMHead(nnx.Module):
    """N(act(h W + b)): the MLM head's transform, hidden → E, so that the tied decoder reads the E-wide token table
    (ELECTRA's generator head, ALBERT's). (..., hidden) → (..., E)."""

    def __init__(self, config: FlexConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.dense = Linear(c.hidden_size, c.embedding_width, use_bias=c.bias, init_std=c.initializer_range,
                            dtype=dtype, rngs=rngs)
        self.act = activation(c.hidden_act)
        self.norm = norm(c, c.embedding_width, dtype=dtype)

    def __call__(self, h: jax.Array) -> jax.Array:
        return self.norm(self.act(self.dense(h)))


class FlexForMaskedLM(PreTrainedModel):
    """Flex with the masked-LM head: logits = head(h) Eᵀ + b (tied to the token table, nn/tied_decoder.py),
    (batch, seq, vocab), zeros at padding when unpadding (the head then runs on the real tokens only); loss = MLM
    cross-entropy given `labels` (-100 = not predicted). Given `masked_positions` (batch, n), the head runs there only:
    logits (batch, n, vocab), `labels` (batch, n)."""

    config_class = FlexConfig
    base_model_prefix = "flex"
    nsp = False                # FlexForPreTraining: the pooler and BERT's NSP classifier too

    def __init__(self, config: FlexConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        c = config
        self.config = config
        self.flex = FlexModel(c, add_pooling_layer=self.nsp, dtype=dtype, rngs=rngs)
        self.head = FlexMLMHead(c, dtype=dtype, rngs=rngs)
        self.decoder = TiedDecoder(c.embedding_width, c.vocab_size, tied=c.tie_word_embeddings,
                                   init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.cls = (NextSentencePredictionHead(c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
                    if self.nsp else None)

    def check_inputs(self, input_ids, attention_mask, token_type_ids, *, segment_ids=None, position_ids=None) -> None:
        self.flex.check_inputs(input_ids, attention_mask, token_type_ids, segment_ids=segment_ids,
                               position_ids=position_ids)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, segment_ids=None,
                position_ids=None, labels=None, masked_positions=None, inputs_embeds=None):
        states, context = self.flex.encode(input_ids, attention_mask, token_type_ids, segment_ids, position_ids,
                                           inputs_embeds)
        last = context.padded(states[-1])
        words = self.flex.embeddings.word_embeddings.weight[...]
        if masked_positions is None:   # dense: the head on every token of the layers' layout, re-padded
            logits = context.padded(self.decoder(self.head(states[-1]), words))
        else:                          # sparse: the head on the masked positions only
            logits = self.decoder(self.head(select_masked(last, masked_positions, labels)), words)
        return ModelOutput(last_hidden_state=last,
                           hidden_states=tuple(map(context.padded, states)) if output_hidden_states else None,
                           logits=logits, loss=None if labels is None else losses.masked_lm_loss(logits, labels))


class FlexForPreTraining(FlexForMaskedLM):
    """Flex with the MLM head and BERT's NSP classifier on the pooled [CLS] (Devlin et al. 2019, §3.1, task #2):
    logits (batch, seq, vocab) as FlexForMaskedLM, seq_relationship_logits (batch, 2), class 0 = "B follows A";
    loss = MLM + NSP given `labels` and `next_sentence_label` (batch,). Given `sentence_order_label` instead, the same
    classifier predicts ALBERT's sentence order (Lan et al. 2020, §4.1; class 1 = "swapped"): mlm+sop."""

    nsp = True

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, segment_ids=None,
                position_ids=None, labels=None, masked_positions=None, inputs_embeds=None, next_sentence_label=None,
                sentence_order_label=None):
        out = super().forward(input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states,
                              segment_ids=segment_ids, position_ids=position_ids, labels=labels,
                              masked_positions=masked_positions, inputs_embeds=inputs_embeds)
        nsp_logits = self.cls(self.flex.pooler(out.last_hidden_state))             # W tanh(W_p h_[CLS] + b_p) + b
        return out.replace(seq_relationship_logits=nsp_logits,
                           loss=losses.pretraining_loss(out.logits, labels, nsp_logits, next_sentence_label
                                                        if sentence_order_label is None else sentence_order_label))


class FlexForReplacedTokenDetection(ElectraForPreTraining):
    """Flex as ELECTRA's discriminator (Clark et al. 2020, §2): logits (batch, seq) = wᵀ act(W h_t + b) + c, > 0 means
    "replaced" (ELECTRA's head, `ElectraDiscriminatorPredictions`, and its `forward`); given `labels` (batch, seq),
    1 = replaced, loss = binary cross-entropy averaged over attended tokens. Trained by `FlexPretrainer`."""

    config_class = FlexConfig
    base_model_prefix = "flex"

    def __init__(self, config: FlexConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        self.flex = FlexModel(config, add_pooling_layer=False, dtype=dtype, rngs=rngs)
        self.discriminator_predictions = ElectraDiscriminatorPredictions(config, dtype=dtype, rngs=rngs)

    def check_inputs(self, input_ids, attention_mask, token_type_ids, *, segment_ids=None, position_ids=None) -> None:
        self.flex.check_inputs(input_ids, attention_mask, token_type_ids, segment_ids=segment_ids,
                               position_ids=position_ids)


class FlexPretrainer(ElectraPretrainer):
    """ELECTRA's replaced-token detection (rtd.py; the loss and `__call__` are ElectraPretrainer's) for any Flex
    combination: a generator FlexForMaskedLM `generator_fraction` as wide as the discriminator, the two sharing one
    embeddings module (word, position and token-type tables and their norm, E wide: the generator maps E → its own
    width with `embeddings_project`, §3.2). `save_pretrained`: the discriminator to the path, the generator to
    path/generator."""

    def __init__(self, generator: FlexForMaskedLM, discriminator: FlexForReplacedTokenDetection, *,
                 rtd_weight: float = rtd.RTD_WEIGHT):
        g, d = generator.config, discriminator.config
        fields = ("vocab_size", "embedding_width", "positions", "max_position_embeddings", "type_vocab_size",
                  "norm_type", "bias", "layer_norm_eps")
        differ = [f"{f}: generator {getattr(g, f)}, discriminator {getattr(d, f)}" for f in fields
                  if getattr(g, f) != getattr(d, f)]
        if differ:
            raise ValueError("generator and discriminator cannot share embeddings:\n  " + "\n  ".join(differ))
        generator.flex.embeddings = discriminator.flex.embeddings
        self.generator, self.discriminator, self.rtd_weight = generator, discriminator, rtd_weight

    @classmethod
    def from_config(cls, discriminator: FlexConfig, generator_fraction: float, *, dtype=jnp.float32,
                    rngs: nnx.Rngs | None = None) -> FlexPretrainer:
        """A fresh pair: the generator has the discriminator's heads' size, `generator_fraction` of its width (of its
        hidden and bottleneck widths, with a bottleneck), heads and FFN, and its E-wide embeddings (ELECTRA's 1/4,
        Appendix Table 6)."""
        rngs = rngs or nnx.Rngs(0)
        d = discriminator
        heads = max(1, round(d.num_attention_heads * generator_fraction))
        width = heads * d.head_dim                                               # the generator's block width
        bottleneck = d.intra_bottleneck_size > 0
        generator = dataclasses.replace(
            d, hidden_size=max(1, round(d.hidden_size * generator_fraction)) if bottleneck else width,
            intra_bottleneck_size=width if bottleneck else 0, num_attention_heads=heads,
            embedding_size=d.embedding_width, intermediate_size=max(1, round(d.intermediate_size * generator_fraction)))
        return cls(FlexForMaskedLM(generator, dtype=dtype, rngs=rngs),
                   FlexForReplacedTokenDetection(discriminator, dtype=dtype, rngs=rngs))


# ---- the families as Flex: their config values and their weights' names ----------------------------------------

def _bert(c: BertConfig) -> dict:
    """BERT (Devlin et al. 2019): learned positions, full attention, GELU MLP, post-LN, biases everywhere."""
    return dict(vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
                num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
                hidden_act=c.hidden_act, type_vocab_size=c.type_vocab_size, positions="learned",
                max_position_embeddings=c.max_position_embeddings, attention="full", ffn="mlp", norm="post",
                hidden_dropout_prob=c.hidden_dropout_prob, attention_probs_dropout_prob=c.attention_probs_dropout_prob,
                layer_norm_eps=c.layer_norm_eps, pad_token_id=c.pad_token_id, initializer_range=c.initializer_range,
                tie_word_embeddings=c.tie_word_embeddings)


def _convbert(c: ConvBertConfig) -> dict:
    """ConvBERT (Jiang et al. 2020): BERT with factorised embeddings (E) and mixed attention, ELECTRA's generator head
    (exact GELU, hidden → E). Its grouped FFN (num_groups > 1, §3.4) has no Flex counterpart."""
    if c.num_groups != 1:
        raise ValueError(f"ConvBERT's grouped feed-forward (num_groups {c.num_groups}) is not a Flex choice")
    if c.hidden_act != "gelu":
        raise ValueError(f"ConvBERT's MLM head uses exact GELU, its FFN hidden_act {c.hidden_act!r}: Flex has one "
                         f"activation for both")
    return {**_bert(c), "embedding_size": c.embedding_size, "span_conv_kernel": c.conv_kernel_size,
            "head_ratio": c.head_ratio}


MOSAIC_HEAD_EPS = 1e-12   # MosaicBERT's MLM head norm: fixed in the reference code, whatever layer_norm_eps says


def _mosaicbert(c: MosaicBertConfig) -> dict:
    """MosaicBERT (Portes et al. 2023, §2.1): BERT with ALiBi, GeGLU (its W has no bias: zero here) and unpadding."""
    if c.layer_norm_eps != MOSAIC_HEAD_EPS:
        raise ValueError(f"MosaicBERT's MLM head norm has eps {MOSAIC_HEAD_EPS} whatever layer_norm_eps says; Flex "
                         f"has one eps for every norm, so layer_norm_eps must be {MOSAIC_HEAD_EPS}, got "
                         f"{c.layer_norm_eps}")
    if c.hidden_act != "gelu":
        raise ValueError(f"MosaicBERT's GLU gates with exact GELU, its MLM head with hidden_act {c.hidden_act!r}: "
                         f"Flex has one activation for both")
    return dict(vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
                num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
                hidden_act=c.hidden_act, type_vocab_size=c.type_vocab_size, positions="alibi",
                max_position_embeddings=c.extra.get("max_position_embeddings", 512),   # ALiBi: only the longest input
                attention="full", ffn="geglu", norm="post", unpad=True, hidden_dropout_prob=c.hidden_dropout_prob,
                attention_probs_dropout_prob=c.attention_probs_dropout_prob, layer_norm_eps=c.layer_norm_eps,
                pad_token_id=c.pad_token_id, initializer_range=c.initializer_range)


def _mobilebert(c: MobileBertConfig) -> dict:
    """MobileBERT (Sun et al. 2020) where Flex expresses it: BERT's embeddings and head around its bottleneck blocks
    (§3.1, with `use_bottleneck_attention`) and stacked FFNs (§3.2), LayerNorm throughout."""
    refusals = {
        "trigram_input": (c.trigram_input, "its trigram embedding convolution (§3.4) is not a Flex choice"),
        "embedding_size": (c.embedding_size != c.hidden_size, "its table widened before the position embeddings "
                                                              "is not Flex's E → H map after the embeddings' norm"),
        "use_bottleneck_attention": (c.use_bottleneck and not c.use_bottleneck_attention,
                                     "values from the wide input are not a Flex choice: its attention reads q, k "
                                     "and v from one input"),
        "key_query_shared_bottleneck": (c.use_bottleneck and c.key_query_shared_bottleneck,
                                        "a second bottleneck for queries and keys is not a Flex choice"),
        "normalization_type": (c.normalization_type != "layer_norm",
                               "its MLM head norm is a LayerNorm whatever normalization_type says; Flex has one norm"),
        "layer_norm_eps": (c.layer_norm_eps != TORCH_DEFAULT_EPS, f"two of its norms use torch's default eps "
                                                                  f"{TORCH_DEFAULT_EPS} whatever layer_norm_eps says"),
        "tie_word_embeddings": (not c.tie_word_embeddings, "its untied decoder keeps a bias it never uses"),
        "pad_token_id": (c.pad_token_id is None, "Flex needs a pad_token_id")}
    for field, (refused, why) in refusals.items():
        if refused:
            raise ValueError(f"MobileBERT's {field} {getattr(c, field)!r} cannot be Flex: {why}")
    return {**_bert(c), "intra_bottleneck_size": c.intra_bottleneck_size if c.use_bottleneck else 0,
            "num_feedforward_networks": c.num_feedforward_networks}


def _global_every(layer_types: list[str]) -> int:
    """n such that layer i is global exactly when i % n == 0 (ModernBERT's pattern); ValueError when there is none."""
    for n in range(1, len(layer_types) + 1):
        if layer_types == [SLIDING if i % n else FULL for i in range(len(layer_types))]:
            return n
    raise ValueError(f"layer_types {layer_types} is not 'every n-th layer global': Flex cannot express it")


def _modernbert(c: ModernBertConfig) -> dict:
    """ModernBERT (Warner et al. 2024, §2.1): RoPE, alternating global/local attention, GeGLU, pre-LN, no biases
    (a bias the config switches on makes Flex's `bias` true, the others then zero), no token types."""
    if c.classifier_activation != c.hidden_activation:
        raise ValueError(f"Flex has one activation for the FFN and the MLM head: ModernBERT's hidden_activation "
                         f"{c.hidden_activation!r} and classifier_activation {c.classifier_activation!r} differ")
    if c.pad_token_id is None:
        raise ValueError("Flex needs a pad_token_id (ModernBERT's is None)")
    every = _global_every(c.layer_types)
    return dict(vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
                num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
                hidden_act=c.hidden_activation, type_vocab_size=0, positions="rope",
                max_position_embeddings=c.max_position_embeddings,
                rope_theta=float(c.rope_parameters[FULL]["rope_theta"]),
                local_rope_theta=float(c.rope_parameters[SLIDING]["rope_theta"]),
                attention="full" if every == 1 else "local_global", local_attention=c.local_attention,
                global_attn_every_n_layers=every, ffn="geglu", norm="pre",
                bias=c.attention_bias or c.mlp_bias or c.norm_bias or c.classifier_bias,
                hidden_dropout_prob=c.mlp_dropout, attention_probs_dropout_prob=c.attention_dropout,
                layer_norm_eps=c.norm_eps, pad_token_id=c.pad_token_id, initializer_range=c.initializer_range,
                tie_word_embeddings=c.tie_word_embeddings)


@dataclasses.dataclass(frozen=True)
class Reproduction:
    """A family as Flex: its masked LM, its config's values as FlexConfig values, and its checkpoint keys renamed to
    Flex's ((pattern, replacement) pairs, the first that matches wins; replacement None: a weight the family keeps but
    never uses in this config)."""

    model_class: type
    values: Callable[[PretrainedConfig], dict]
    keys: tuple[tuple[str, str | None], ...]


def _layers(stack: str, names: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """`{stack}.N.{name}.…` → `flex.layers.N.{Flex's name}.…` for each of a family's per-layer module names."""
    return tuple((rf"^{stack}\.(\d+)\.{re.escape(name)}\.", rf"flex.layers.\1.{flex_name}.")
                 for name, flex_name in names.items())


# BERT's layer names (ConvBERT's too; MosaicBERT's attention), BERT's q, k, v first fused into `Wqkv` (_fuse_qkv)
BERT_ATTENTION = {"attention.self.Wqkv": "attention.Wqkv", "attention.output.dense": "attention.Wo",
                  "attention.output.LayerNorm": "attention_norm"}
BERT_FFN = {"intermediate.dense": "ffn.Wi", "output.dense": "ffn.Wo", "output.LayerNorm": "ffn_norm"}
BERT_HEAD = ((r"^cls\.predictions\.transform\.dense\.", "head.dense."),
             (r"^cls\.predictions\.transform\.LayerNorm\.", "head.norm."))

REPRODUCTIONS = {
    "bert": Reproduction(BertForMaskedLM, _bert, (
        (r"^bert\.embeddings\.", "flex.embeddings."),
        *_layers(r"bert\.encoder\.layer", BERT_ATTENTION | BERT_FFN), *BERT_HEAD,
        (r"^cls\.predictions\.bias$", "decoder.bias"),
        (r"^cls\.predictions\.decoder\.weight$", "decoder.weight"))),
    "convbert": Reproduction(ConvBertForMaskedLM, _convbert, (
        (r"^convbert\.(embeddings|embeddings_project)\.", r"flex.\1."),
        *_layers(r"convbert\.encoder\.layer", BERT_ATTENTION | BERT_FFN | {
            "attention.self.key_conv_attn_layer": "attention.span_key",
            "attention.self.conv_kernel_layer": "attention.conv_kernel",
            "attention.self.conv_out_layer": "attention.conv_value"}),
        (r"^generator_predictions\.dense\.", "head.dense."),
        (r"^generator_predictions\.LayerNorm\.", "head.norm."),
        (r"^generator_lm_head\.", "decoder."))),
    "mobilebert": Reproduction(MobileBertForMaskedLM, _mobilebert, (
        (r"^mobilebert\.embeddings\.embedding_transformation\.", None),          # unused without trigram or E ≠ H
        (r"^mobilebert\.embeddings\.", "flex.embeddings."),
        (r"^mobilebert\.encoder\.layer\.(\d+)\.ffn\.(\d+)\.intermediate\.dense\.",
         r"flex.layers.\1.stacked_ffns.\2.Wi."),
        (r"^mobilebert\.encoder\.layer\.(\d+)\.ffn\.(\d+)\.output\.dense\.", r"flex.layers.\1.stacked_ffns.\2.Wo."),
        (r"^mobilebert\.encoder\.layer\.(\d+)\.ffn\.(\d+)\.output\.LayerNorm\.",
         r"flex.layers.\1.stacked_ffn_norms.\2."),
        *_layers(r"mobilebert\.encoder\.layer", BERT_ATTENTION | BERT_FFN | {
            "bottleneck.input": "bottleneck_in", "output.bottleneck": "bottleneck_out"}), *BERT_HEAD,
        (r"^cls\.predictions\.bias$", "decoder.bias"),
        (r"^cls\.predictions\.dense\.", None))),                                # (vocab, 0) when E = H
    "mosaicbert": Reproduction(MosaicBertForMaskedLM, _mosaicbert, (
        (r"^bert\.embeddings\.", "flex.embeddings."),
        *_layers(r"bert\.encoder\.layer", BERT_ATTENTION | {"mlp.gated_layers": "ffn.Wi", "mlp.wo": "ffn.Wo",
                                                              "mlp.layernorm": "ffn_norm"}), *BERT_HEAD,
        (r"^cls\.predictions\.decoder\.", "decoder."))),
    "modernbert": Reproduction(ModernBertForMaskedLM, _modernbert, (
        (r"^model\.embeddings\.tok_embeddings\.", "flex.embeddings.word_embeddings."),
        (r"^model\.embeddings\.norm\.", "flex.embeddings.LayerNorm."),
        *_layers(r"model\.layers", {"attn": "attention", "attn_norm": "attention_norm", "mlp": "ffn",
                                     "mlp_norm": "ffn_norm"}),
        (r"^model\.final_norm\.", "flex.final_norm."),
        (r"^(head|decoder)\.", r"\1."))),
}


def preset(name: str, **values) -> FlexConfig:
    """The Flex config of a family's defaults ("bert", "convbert", "mosaicbert", "modernbert"), `values` over it.
    ("mobilebert" raises: the published MobileBERT's trigram embeddings are not a Flex choice.)"""
    if name not in REPRODUCTIONS:
        raise ValueError(f"unknown Flex preset {name!r}; choose from {', '.join(REPRODUCTIONS)}")
    reproduction = REPRODUCTIONS[name]
    return FlexConfig(**{**reproduction.values(reproduction.model_class.config_class()), **values})


def _fuse_qkv(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """BERT's separate `query`, `key`, `value` as one `Wqkv` = [W_q; W_k; W_v] (rows: outputs), MosaicBERT's layout."""
    fused = dict(tensors)
    for key in [k for k in tensors if re.search(r"\.self\.query\.(weight|bias)$", k)]:
        parts = [fused.pop(key.replace(".query.", f".{name}.")) for name in ("query", "key", "value")]
        fused[key.replace(".query.", ".Wqkv.")] = np.concatenate(parts, axis=0)
    return fused


def _rename(key: str, keys: tuple[tuple[str, str | None], ...]) -> str | None:
    for pattern, replacement in keys:
        if re.search(pattern, key):
            return None if replacement is None else re.sub(pattern, replacement, key)
    raise ValueError(f"{key}: no Flex parameter for it")


def flex_from(model) -> FlexForMaskedLM:
    """The FlexForMaskedLM that computes what `model` (a BertForMaskedLM, ConvBertForMaskedLM, MobileBertForMaskedLM,
    MosaicBertForMaskedLM or ModernBertForMaskedLM) computes, in eval mode: the family's config as Flex values
    (unpadding and token capacity as the model runs), its weights under Flex's names; a bias that Flex has and the
    family lacks is zero. Raises ValueError for another class, or a config Flex cannot express."""
    reproduction = next((r for r in REPRODUCTIONS.values() if type(model) is r.model_class), None)
    if reproduction is None:
        raise ValueError(f"flex_from maps {', '.join(r.model_class.__name__ for r in REPRODUCTIONS.values())}, "
                         f"not {type(model).__name__}")
    values = reproduction.values(model.config)
    base = model.base_model
    if hasattr(base, "unpad"):                                    # ModernBERT's unpadding is a switch on the model
        values["unpad"] = base.unpad
    flex = FlexForMaskedLM(FlexConfig(**values))
    flex.flex.token_capacity = getattr(base, "token_capacity", None)
    tensors = _fuse_qkv({k: np.asarray(v[...]) for k, v in model_state_dict(model).items()})
    renamed = {_rename(k, reproduction.keys): v for k, v in tensors.items()}
    renamed.pop(None, None)                                       # weights the family keeps but does not use
    params = model_state_dict(flex)
    unknown = sorted(set(renamed) - set(params))
    if unknown:
        raise ValueError(f"{type(model).__name__}'s weights {unknown} have no place in its Flex model")
    for key, param in params.items():
        if key in renamed:
            if renamed[key].shape != param.shape:
                raise ValueError(f"{key}: {type(model).__name__}'s weight has shape {renamed[key].shape}, Flex's "
                                 f"{param.shape}")
            param.set_value(jnp.asarray(renamed[key]))
        elif key.endswith(".bias"):
            param.set_value(jnp.zeros(param.shape, param.dtype))
        else:
            raise ValueError(f"{key}: no weight of {type(model).__name__} maps onto it")
    flex.eval()
    return flex
