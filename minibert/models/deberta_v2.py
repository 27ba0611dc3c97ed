"""DeBERTa-v2/v3: BERT's post-LN encoder with disentangled attention over relative positions.

He, Liu, Gao & Chen, "DeBERTa: Decoding-enhanced BERT with Disentangled Attention" (ICLR 2021); He, Gao & Chen,
"DeBERTaV3: Improving DeBERTa using ELECTRA-Style Pre-Training with Gradient-Disentangled Embedding Sharing"
(ICLR 2023).
    §3.1  attention = content→content + content→position + position→content, relative positions δ(i, j)
          clipped to a span k (v2: log buckets, `position_buckets`)     → nn/disentangled_attention.py,
                                                                           nn/relative_position.py
          one relative embedding table P (2k, hidden) for every layer, `encoder.rel_embeddings` (+ LayerNorm when
          `norm_rel_ebd` says "layer_norm"); v3 shares the content projections with P (`share_att_key`)
    v3    ELECTRA's replaced-token detection with gradient-disentangled embedding sharing (GDES, nn/gdes.py):
          DebertaV2ForReplacedTokenDetection, DebertaV3Pretrainer
    §3.2  no absolute positions in the layers: `position_biased_input` False adds none to the embeddings
    v2    an optional convolution beside the first layer (`conv_kernel_size` > 0, deberta-v2-xlarge): ConvLayer
The layers are BERT's otherwise: h = LN(x + W_O attention), out = LN(h + FFN(h)), HF's names
(`attention.output.dense`, `intermediate.dense`, `output.LayerNorm`). The embeddings are multiplied by the
attention mask (padding rows zero) after their LayerNorm. The masked-LM head comes in two layouts (`legacy`):
`cls.predictions.*` (BERT's, with an E-wide transform when `embedding_size` ≠ hidden) and
`lm_predictions.lm_head.*` (the authors' code, which v3 checkpoints hold). transformers builds the one
config.json's `legacy` names (True when absent) and drops the other's weights; minibert loads the layout the
checkpoint holds (`fit_config_to_checkpoint`), with a warning when that overrides config.json.
Reference: transformers' models/deberta_v2/modeling_deberta_v2.py and configuration_deberta_v2.py.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from minibert import losses, rtd
from minibert.config import PretrainedConfig
from minibert.models.base import PreTrainedModel
from minibert.models.electra import ElectraPretrainer
from minibert.models.heads import select_masked
from minibert.models.outputs import ModelOutput
from minibert.nn.activations import activation
from minibert.nn.disentangled_attention import POSITION_TERMS, DisentangledSelfAttention, query_key_mask
from minibert.nn.dynamic_conv import unfold_spans
from minibert.nn.embeddings import Embedding
from minibert.nn.feedforward import Intermediate, PostNormOutput
from minibert.nn.gdes import GradientDisentangledEmbedding
from minibert.nn.linear import Linear
from minibert.nn.norms import LayerNorm
from minibert.nn.relative_position import build_relative_position
from minibert.nn.tied_decoder import TiedDecoder

logger = logging.getLogger(__name__)
NORM_REL_EBD = ("none", "layer_norm")


@dataclasses.dataclass
class DebertaV2Config(PretrainedConfig):
    """DeBERTa-v2 hyper-parameters with Hugging Face's names and defaults (deberta-v2-xlarge's sizes; v3 checkpoints
    set relative_attention, position_buckets 256, share_att_key, norm_rel_ebd "layer_norm", pos_att_type
    "p2c|c2p", position_biased_input False, type_vocab_size 0 in their config.json). The fields after
    `tie_word_embeddings` are not declared by transformers' config class but read by its modeling code, with
    these defaults; `embedding_size` None means hidden_size.

    Both config.json dialects: `pos_att_type` as the authors' "p2c|c2p" string (the released checkpoints) or as a
    list (transformers 5 writes it so) is read into a lower-case list (`from_dict`); it is written as a list."""

    model_type: ClassVar[str] = "deberta-v2"

    vocab_size: int = 128100
    hidden_size: int = 1536
    num_hidden_layers: int = 24
    num_attention_heads: int = 24
    intermediate_size: int = 6144
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-7
    relative_attention: bool = False
    max_relative_positions: int = -1
    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    position_biased_input: bool = True
    pos_att_type: list[str] | None = None
    pooler_dropout: float = 0.0
    pooler_hidden_act: str = "gelu"
    legacy: bool = True
    tie_word_embeddings: bool = True
    position_buckets: int = -1
    share_att_key: bool = False
    norm_rel_ebd: str = "none"
    embedding_size: int | None = None
    conv_kernel_size: int = 0
    conv_groups: int = 1
    conv_act: str = "tanh"
    cls_dropout: float | None = None       # the task heads' dropout (None: hidden_dropout_prob), read by transformers

    @property
    def classifier_dropout(self) -> float | None:
        """The task heads' dropout, under the name the other families' configs give it."""
        return self.cls_dropout

    def __post_init__(self):
        if self.embedding_size is None:
            self.embedding_size = self.hidden_size

    @classmethod
    def from_dict(cls, values):
        terms = values.get("pos_att_type")
        if isinstance(terms, str):           # the authors' dialect: "p2c|c2p"
            values = {**values, "pos_att_type": [t.strip() for t in terms.lower().split("|")]}
        return super().from_dict(values)

    @property
    def span(self) -> int:
        """k: relative positions clamp to [−k, k); the relative embeddings have 2k rows."""
        return self.position_buckets if self.position_buckets > 0 else self.max_relative

    @property
    def max_relative(self) -> int:
        """max_relative_positions, or max_position_embeddings when it is < 1 (transformers' rule)."""
        return self.max_relative_positions if self.max_relative_positions >= 1 else self.max_position_embeddings

    @property
    def rel_norms(self) -> list[str]:
        return [t.strip() for t in self.norm_rel_ebd.lower().split("|")]

    def validate(self) -> None:
        super().validate()
        c = self
        if c.hidden_size % c.num_attention_heads:
            raise ValueError(f"hidden_size {c.hidden_size} is not a multiple of num_attention_heads "
                             f"{c.num_attention_heads}")
        unknown = set(c.pos_att_type or []) - set(POSITION_TERMS)
        if unknown:
            raise ValueError(f"pos_att_type {c.pos_att_type}: unknown {sorted(unknown)}; DeBERTa-v2 has "
                             f"{list(POSITION_TERMS)}")
        if set(c.rel_norms) - set(NORM_REL_EBD):
            raise ValueError(f"norm_rel_ebd {c.norm_rel_ebd!r}: each '|'-separated entry must be one of {NORM_REL_EBD}")
        if not c.legacy and c.embedding_size != c.hidden_size:
            raise ValueError(f"legacy False (the lm_predictions head) needs embedding_size = hidden_size, got "
                             f"{c.embedding_size} and {c.hidden_size}: its logits are h Eᵀ with an H-wide h")
        if c.conv_kernel_size > 0 and (c.conv_kernel_size % 2 == 0 or c.hidden_size % c.conv_groups):
            raise ValueError(f"conv_kernel_size {c.conv_kernel_size} must be odd (a centred window) and conv_groups "
                             f"{c.conv_groups} must divide hidden_size {c.hidden_size}")
        head_size = c.extra.get("attention_head_size", c.hidden_size // c.num_attention_heads)
        if head_size != c.hidden_size // c.num_attention_heads:
            raise ValueError(f"attention_head_size {head_size} ≠ hidden_size / num_attention_heads is not supported")


class DebertaV2Embeddings(nnx.Module):
    """E = Dropout(m ⊙ LayerNorm(embed_proj(word[ids] + position[i] + token_type[t]))): (batch, seq) →
    (batch, seq, hidden). position only with `position_biased_input`, token_type only when type_vocab_size > 0,
    embed_proj (E → H, no bias) only when embedding_size ≠ hidden_size; m is the attention mask."""

    def __init__(self, config: DebertaV2Config, *, dtype, rngs: nnx.Rngs):
        c = config
        table = dict(init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        e = c.embedding_size
        self.word_embeddings = Embedding(c.vocab_size, e, padding_idx=c.pad_token_id, **table)
        self.position_embeddings = Embedding(c.max_position_embeddings, e, **table) if c.position_biased_input else None
        self.token_type_embeddings = Embedding(c.type_vocab_size, e, **table) if c.type_vocab_size > 0 else None
        self.embed_proj = None if e == c.hidden_size else Linear(e, c.hidden_size, use_bias=False,
                                                                 init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.LayerNorm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, dtype=dtype)
        self.dropout = nnx.Dropout(c.hidden_dropout_prob, rngs=rngs)

    def __call__(self, input_ids: jax.Array | None, token_type_ids: jax.Array, attention_mask: jax.Array,
                 inputs_embeds: jax.Array | None = None) -> jax.Array:
        """`inputs_embeds` (batch, seq, embedding_size), when given instead of input_ids, replaces word[input_ids]."""
        words = self.word_embeddings
        x = words(input_ids) if inputs_embeds is None else inputs_embeds.astype(words.dtype)   # (batch, seq, E)
        if self.position_embeddings is not None:
            x = x + self.position_embeddings(jnp.arange(x.shape[1])[None, :])
        if self.token_type_embeddings is not None:
            x = x + self.token_type_embeddings(token_type_ids)
        if self.embed_proj is not None:
            x = self.embed_proj(x)                                                  # (batch, seq, hidden)
        x = self.LayerNorm(x) * attention_mask[..., None].astype(x.dtype)         # padding rows zero
        return self.dropout(x)


class DebertaV2Attention(nnx.Module):
    """h = LayerNorm(x + Dropout(DisentangledAttention(x) W_O)): (batch, seq, hidden) → (batch, seq, hidden)."""

    def __init__(self, config: DebertaV2Config, *, dtype, rngs: nnx.Rngs):
        c = config
        self.self = DisentangledSelfAttention(c.hidden_size, c.num_attention_heads, pos_att_type=c.pos_att_type or [],
                                              relative_attention=c.relative_attention, share_att_key=c.share_att_key,
                                              dropout=c.attention_probs_dropout_prob, pos_dropout=c.hidden_dropout_prob,
                                              init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.output = PostNormOutput(c.hidden_size, c.hidden_size, eps=c.layer_norm_eps, dropout=c.hidden_dropout_prob,
                                     init_std=c.initializer_range, dtype=dtype, rngs=rngs)

    def __call__(self, x, mask, relative_pos, rel_embeddings):
        return self.output(self.self(x, mask, relative_pos, rel_embeddings), x)


class DebertaV2Layer(nnx.Module):
    """One post-LN layer: disentangled attention sublayer, then BERT's feed-forward sublayer."""

    def __init__(self, config: DebertaV2Config, *, dtype, rngs: nnx.Rngs):
        c = config
        self.attention = DebertaV2Attention(c, dtype=dtype, rngs=rngs)
        self.intermediate = Intermediate(c.hidden_size, c.intermediate_size, c.hidden_act,
                                         init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.output = PostNormOutput(c.intermediate_size, c.hidden_size, eps=c.layer_norm_eps,
                                     dropout=c.hidden_dropout_prob, init_std=c.initializer_range, dtype=dtype,
                                     rngs=rngs)

    def __call__(self, x, mask, relative_pos, rel_embeddings):
        h = self.attention(x, mask, relative_pos, rel_embeddings)
        return self.output(self.intermediate(h), h)


class Conv1d(nnx.Module):
    """PyTorch's `nn.Conv1d` with a centred window ('same' length, odd k) and `groups`, channels last:
    y[:, i, o] = b[o] + Σ_{j, c in o's group} weight[o, c, j] · x[:, i + j − (k−1)/2, c]; weight is
    (out, in / groups, k) as PyTorch stores it. (batch, seq, in) → (batch, seq, out)."""

    def __init__(self, channels: int, kernel_size: int, groups: int, *, init_std: float, dtype, rngs: nnx.Rngs):
        shape = (channels, channels // groups, kernel_size)
        self.weight = nnx.Param(init_std * jax.random.normal(rngs.params(), shape, jnp.float32))
        self.bias = nnx.Param(jnp.zeros((channels,), jnp.float32))
        self.groups = groups
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.weight.shape[-1]
        spans = unfold_spans(x.astype(self.dtype), k)                                  # (b, s, k, in)
        spans = spans.reshape(*spans.shape[:3], self.groups, -1)                      # (b, s, k, g, in/g)
        w = self.weight[...].astype(self.dtype).reshape(self.groups, -1, *self.weight.shape[1:])  # (g, o/g, in/g, k)
        y = jnp.einsum("bskgc,gock->bsgo", spans, w)
        return y.reshape(*x.shape[:2], -1) + self.bias[...].astype(self.dtype)


class ConvLayer(nnx.Module):
    """DeBERTa-v2's convolution beside the first layer (HF `ConvLayer`), x the encoder's input, h layer 0's output,
    m the attention mask: out = m ⊙ LayerNorm(h + act(Dropout(m ⊙ Conv1d(x)))), (batch, seq, hidden)."""

    def __init__(self, config: DebertaV2Config, *, dtype, rngs: nnx.Rngs):
        c = config
        self.conv = Conv1d(c.hidden_size, c.conv_kernel_size, c.conv_groups, init_std=c.initializer_range,
                           dtype=dtype, rngs=rngs)
        self.act = activation(c.conv_act)
        self.LayerNorm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, dtype=dtype)
        self.dropout = nnx.Dropout(c.hidden_dropout_prob, rngs=rngs)

    def __call__(self, x: jax.Array, h: jax.Array, attention_mask: jax.Array) -> jax.Array:
        m = attention_mask[..., None].astype(h.dtype)
        out = self.act(self.dropout(self.conv(x) * m))
        return self.LayerNorm(h + out) * m


class DebertaV2Encoder(nnx.Module):
    """The layers, sharing one relative embedding table P (2k, hidden) (`rel_embeddings`, normalised by `LayerNorm`
    when norm_rel_ebd says so) and one δ(i, j) table; the ConvLayer after layer 0 when conv_kernel_size > 0.
    Returns the last hidden state and every layer's input/output, (batch, seq, hidden) each."""

    def __init__(self, config: DebertaV2Config, *, dtype, rngs: nnx.Rngs):
        c = config
        self.layer = nnx.List([DebertaV2Layer(c, dtype=dtype, rngs=rngs) for _ in range(c.num_hidden_layers)])
        self.relative_attention = c.relative_attention
        self.position_buckets, self.max_relative_positions = c.position_buckets, c.max_relative
        self.rel_embeddings = Embedding(2 * c.span, c.hidden_size, init_std=c.initializer_range, dtype=dtype,
                                        rngs=rngs) if c.relative_attention else None
        self.LayerNorm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, dtype=dtype) if "layer_norm" in c.rel_norms \
            else None
        self.conv = ConvLayer(c, dtype=dtype, rngs=rngs) if c.conv_kernel_size > 0 else None
        self.dtype = dtype

    def rel_embedding(self) -> jax.Array | None:
        """P: (2k, hidden), after LayerNorm when norm_rel_ebd has "layer_norm"; None without relative attention."""
        if self.rel_embeddings is None:
            return None
        table = self.rel_embeddings.weight[...].astype(self.dtype)
        return table if self.LayerNorm is None else self.LayerNorm(table)

    def __call__(self, x: jax.Array, attention_mask: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        seq = x.shape[1]
        mask = query_key_mask(attention_mask)                                              # (batch, 1, seq, seq)
        relative_pos = build_relative_position(seq, seq, self.position_buckets, self.max_relative_positions) \
            if self.relative_attention else None                                           # δ(i, j): (seq, seq)
        rel = self.rel_embedding()
        states, h = [x], x
        for i, layer in enumerate(self.layer):
            h = layer(h, mask, relative_pos, rel)
            if i == 0 and self.conv is not None:
                h = self.conv(x, h, attention_mask)
            states.append(h)
        return h, tuple(states)


class _DebertaV2PreTrainedModel(PreTrainedModel):
    """What every DeBERTa-v2 model shares: its config, the embedding table transformers ignores when the
    checkpoint has one the model does not use (`_keys_to_ignore_on_load_unexpected`)."""

    config_class = DebertaV2Config
    ignored_checkpoint_keys = (r"(^|\.)embeddings\.position_embeddings\.weight$",)


class DebertaV2Model(_DebertaV2PreTrainedModel):
    """The bare encoder: (batch, seq) ids → last_hidden_state (batch, seq, hidden). No pooler (transformers'
    `ContextPooler` belongs to the task heads)."""

    is_base_model = True

    def __init__(self, config: DebertaV2Config, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        config.validate()
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        self.embeddings = DebertaV2Embeddings(config, dtype=dtype, rngs=rngs)
        self.encoder = DebertaV2Encoder(config, dtype=dtype, rngs=rngs)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, inputs_embeds=None):
        x = self.embeddings(input_ids, token_type_ids, attention_mask, inputs_embeds)
        last, states = self.encoder(x, attention_mask)
        return ModelOutput(last_hidden_state=last, hidden_states=states if output_hidden_states else None)


class LegacyDebertaV2PredictionHeadTransform(nnx.Module):
    """LayerNorm(act(W h + b)), hidden → embedding_size: (batch, seq, hidden) → (batch, seq, embedding_size)."""

    def __init__(self, config: DebertaV2Config, *, dtype, rngs: nnx.Rngs):
        c = config
        self.dense = Linear(c.hidden_size, c.embedding_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.act = activation(c.hidden_act)
        self.LayerNorm = LayerNorm(c.embedding_size, eps=c.layer_norm_eps, dtype=dtype)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        return self.LayerNorm(self.act(self.dense(hidden)))


class LegacyDebertaV2LMPredictionHead(nnx.Module):
    """`cls.predictions`: logits = transform(h) Eᵀ + bias, E the word embeddings (vocab, embedding_size) when
    tie_word_embeddings (transformers then ties `decoder.weight` to E and `decoder.bias` to `bias`, and saves
    neither), else the head's own `decoder` Linear, bias included (`bias` is then kept, unused, as transformers
    keeps it, so both keys round-trip). (batch, seq, hidden) → (batch, seq, vocab)."""

    def __init__(self, config: DebertaV2Config, *, dtype, rngs: nnx.Rngs):
        c = config
        self.transform = LegacyDebertaV2PredictionHeadTransform(c, dtype=dtype, rngs=rngs)
        self.decoder = TiedDecoder(c.embedding_size, c.vocab_size, tied=c.tie_word_embeddings,
                                   use_bias=not c.tie_word_embeddings, init_std=c.initializer_range, dtype=dtype,
                                   rngs=rngs)
        self.bias = nnx.Param(jnp.zeros((c.vocab_size,), jnp.float32))

    def __call__(self, hidden: jax.Array, word_embeddings: jax.Array) -> jax.Array:
        h = self.transform(hidden)
        logits = self.decoder(h, word_embeddings)
        return logits if self.decoder.bias is not None else logits + self.bias[...].astype(h.dtype)  # untied: its own


class LegacyDebertaV2OnlyMLMHead(nnx.Module):
    def __init__(self, config: DebertaV2Config, *, dtype, rngs: nnx.Rngs):
        self.predictions = LegacyDebertaV2LMPredictionHead(config, dtype=dtype, rngs=rngs)


class DebertaV2LMPredictionHead(nnx.Module):
    """`lm_predictions.lm_head` (the authors' code): logits = LayerNorm(act(W h + b)) Eᵀ + bias, always with the
    word embeddings E (vocab, hidden). (batch, seq, hidden) → (batch, seq, vocab)."""

    def __init__(self, config: DebertaV2Config, *, dtype, rngs: nnx.Rngs):
        c = config
        self.dense = Linear(c.hidden_size, c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.act = activation(c.hidden_act)
        self.LayerNorm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, dtype=dtype)
        self.decoder = TiedDecoder(c.hidden_size, c.vocab_size, tied=True, use_bias=False, dtype=dtype, rngs=rngs)
        self.bias = nnx.Param(jnp.zeros((c.vocab_size,), jnp.float32))

    def __call__(self, hidden: jax.Array, word_embeddings: jax.Array) -> jax.Array:
        h = self.LayerNorm(self.act(self.dense(hidden)))
        return self.decoder(h, word_embeddings) + self.bias[...].astype(h.dtype)             # h Eᵀ + bias


class DebertaV2OnlyMLMHead(nnx.Module):
    def __init__(self, config: DebertaV2Config, *, dtype, rngs: nnx.Rngs):
        self.lm_head = DebertaV2LMPredictionHead(config, dtype=dtype, rngs=rngs)


LEGACY_HEAD_PREFIX, HEAD_PREFIX = "cls.predictions.", "lm_predictions.lm_head."


class DebertaV2ForMaskedLM(_DebertaV2PreTrainedModel):
    """DeBERTa with its MLM head, `cls` (legacy) or `lm_predictions`: logits (batch, seq, vocab); loss = MLM
    cross-entropy given `labels` (-100 where nothing is predicted). Given `masked_positions` (batch, n), the head
    runs there only (a sparse head): logits (batch, n, vocab), `labels` (batch, n)."""

    base_model_prefix = "deberta"
    ignored_checkpoint_keys = (*_DebertaV2PreTrainedModel.ignored_checkpoint_keys,
                               r"^cls\.predictions\.decoder\.(weight|bias)$")    # tied copies, when tied

    def __init__(self, config: DebertaV2Config, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        self.deberta = DebertaV2Model(config, dtype=dtype, rngs=rngs)
        self.cls = LegacyDebertaV2OnlyMLMHead(config, dtype=dtype, rngs=rngs) if config.legacy else None
        self.lm_predictions = None if config.legacy else DebertaV2OnlyMLMHead(config, dtype=dtype, rngs=rngs)

    @classmethod
    def fit_config_to_checkpoint(cls, config: DebertaV2Config, keys) -> None:
        """Set `legacy` to the head layout the checkpoint holds, when it holds exactly one (a bare encoder's
        checkpoint holds none: config.json decides). microsoft/deberta-v3-base's config.json has no `legacy`
        (so True) but its weights are `lm_predictions.lm_head.*`."""
        held = {prefix for prefix in (LEGACY_HEAD_PREFIX, HEAD_PREFIX) for key in keys if key.startswith(prefix)}
        if len(held) == 1 and config.legacy != (LEGACY_HEAD_PREFIX in held):
            (prefix,) = held
            logger.warning("config.json says legacy=%s but the checkpoint's masked-LM head is %s*: loading that "
                           "layout (legacy=%s)", config.legacy, prefix, not config.legacy)
            config.legacy = not config.legacy

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                masked_positions=None, inputs_embeds=None):
        out = self.deberta.forward(input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states,
                                   inputs_embeds=inputs_embeds)
        scored = select_masked(out.last_hidden_state, masked_positions, labels)  # all positions, or the masked ones
        head = self.cls.predictions if self.lm_predictions is None else self.lm_predictions.lm_head
        logits = head(scored, self.deberta.embeddings.word_embeddings.weight[...])
        return out.replace(logits=logits, loss=None if labels is None else losses.masked_lm_loss(logits, labels))


class ContextPooler(nnx.Module):
    """pooled = act(dense(Dropout(h_[CLS]))), act `pooler_hidden_act`, dropout `pooler_dropout` (the task heads'
    pooler; transformers' `ContextPooler`): (batch, seq, hidden) → (batch, hidden)."""

    def __init__(self, config: DebertaV2Config, *, dtype, rngs: nnx.Rngs):
        c = config
        if c.extra.get("pooler_hidden_size", c.hidden_size) != c.hidden_size:
            raise ValueError(f"pooler_hidden_size {c.extra['pooler_hidden_size']} ≠ hidden_size {c.hidden_size}: "
                             f"transformers' classifier reads a hidden_size-wide pooled vector")
        self.dropout = nnx.Dropout(c.pooler_dropout, rngs=rngs)
        self.dense = Linear(c.hidden_size, c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.act = activation(c.pooler_hidden_act)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        return self.act(self.dense(self.dropout(hidden[:, 0])))


class LMMaskPredictionHead(nnx.Module):
    """The authors' replaced-token head (DeBERTa's `ReplacedTokenDetectionModel.mask_predictions`): each token's
    state plus the [CLS] state, LayerNorm, dense, act, one logit. (batch, seq, hidden) → (batch, seq)."""

    def __init__(self, config: DebertaV2Config, *, dtype, rngs: nnx.Rngs):
        c = config
        self.LayerNorm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, dtype=dtype)
        self.dense = Linear(c.hidden_size, c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.act = activation(c.hidden_act)
        self.classifier = Linear(c.hidden_size, 1, init_std=c.initializer_range, dtype=dtype, rngs=rngs)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        h = self.LayerNorm(hidden[:, :1] + hidden)                                  # LN(h_[CLS] + h_t)
        return self.classifier(self.act(self.dense(h)))[..., 0]


class DebertaV2ForReplacedTokenDetection(_DebertaV2PreTrainedModel):
    """DeBERTa-v3's discriminator: logits (batch, seq), > 0 = "replaced"; loss = replaced-token detection
    (binary cross-entropy over real tokens) given `labels` (batch, seq), 1 = replaced. Its head's keys are the
    released v3 checkpoints' `mask_predictions.*` (transformers has no such class and drops them)."""

    base_model_prefix = "deberta"

    def __init__(self, config: DebertaV2Config, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        self.deberta = DebertaV2Model(config, dtype=dtype, rngs=rngs)
        self.mask_predictions = LMMaskPredictionHead(config, dtype=dtype, rngs=rngs)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None):
        out = self.deberta.forward(input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states)
        logits = self.mask_predictions(out.last_hidden_state)
        loss = None if labels is None else losses.replaced_token_detection_loss(logits, labels, attention_mask)
        return out.replace(logits=logits, loss=loss)


class DebertaV3Pretrainer(ElectraPretrainer):
    """DeBERTa-v3's pretraining (He et al. 2023): ELECTRA's replaced-token detection (`rtd.py`, this class's
    `__call__` and loss are ELECTRA's pretrainer's) with a generator of the discriminator's width and half its depth
    (§5.1), and gradient-disentangled embedding sharing (`nn/gdes.py`): the discriminator reads
    E_D = sg(E_G) + E_Δ, so only the generator's MLM loss moves the shared table.

        pretrainer = DebertaV3Pretrainer.from_config(discriminator_config, 0.5)
        out = pretrainer(masked_ids, attention_mask, token_type_ids, labels=mlm_labels, key=key)

    `save_pretrained` writes the discriminator with its table E_G + E_Δ, a plain DeBERTa checkpoint."""

    def __init__(self, generator: DebertaV2ForMaskedLM, discriminator: DebertaV2ForReplacedTokenDetection, *,
                 rtd_weight: float = rtd.RTD_WEIGHT):
        g, d = generator.config, discriminator.config
        differ = [f"{f}: generator {getattr(g, f)}, discriminator {getattr(d, f)}"
                  for f in ("vocab_size", "embedding_size", "pad_token_id") if getattr(g, f) != getattr(d, f)]
        if differ:
            raise ValueError("generator and discriminator cannot share token embeddings:\n  " + "\n  ".join(differ))
        tables = discriminator.deberta.embeddings
        tables.word_embeddings = GradientDisentangledEmbedding(generator.deberta.embeddings.word_embeddings)
        self.generator, self.discriminator, self.rtd_weight = generator, discriminator, rtd_weight

    @classmethod
    def from_config(cls, discriminator: DebertaV2Config, generator_fraction: float, *, dtype=jnp.float32,
                    rngs: nnx.Rngs | None = None) -> DebertaV3Pretrainer:
        """A fresh pair; the generator keeps the discriminator's width with `generator_fraction` of its layers."""
        rngs = rngs or nnx.Rngs(0)
        layers = max(1, round(discriminator.num_hidden_layers * generator_fraction))
        generator = dataclasses.replace(discriminator, num_hidden_layers=layers)
        return cls(DebertaV2ForMaskedLM(generator, dtype=dtype, rngs=rngs),
                   DebertaV2ForReplacedTokenDetection(discriminator, dtype=dtype, rngs=rngs))

    def save_pretrained(self, path) -> None:
        """The discriminator, its token table E_G + E_Δ, to `path`; the generator to `path/generator`."""
        tables = self.discriminator.deberta.embeddings
        shared = tables.word_embeddings
        merged = Embedding(*shared.delta.shape, padding_idx=shared.padding_idx, dtype=shared.dtype, rngs=nnx.Rngs(0))
        merged.weight.set_value(shared.merged())
        tables.word_embeddings = merged
        try:
            super().save_pretrained(path)
        finally:
            tables.word_embeddings = shared
