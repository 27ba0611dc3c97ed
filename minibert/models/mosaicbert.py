"""MosaicBERT: BERT with ALiBi, gated linear units, unpadding and low-precision LayerNorm.

Portes et al., "MosaicBERT: A Bidirectional Encoder Optimized for Fast Pretraining" (NeurIPS 2023,
arXiv 2312.17482), §2.1 (architecture) and §2.2 (pretraining). What differs from BERT, and where it lives:
    no position embeddings: E_i = LayerNorm(word[x_i] + token_type[t_i])         → MosaicBertEmbeddings
    ALiBi (Press et al. 2022): scores q_i·k_j/√d − m_h·|i − j|                     → nn/alibi.py
    GeGLU feed-forward: out = LN(h + W_o(GELU(h W) ⊗ h V))                         → nn/feedforward.glu
    unpadding: padding removed before the encoder, put back after                  → nn/packing.py
    low-precision LayerNorm (a compute option, not a weight)                       → nn/norms.py
    30% masking in pretraining                                                     → config.mlm_probability
Each layer is post-LN, like BERT: h = LN(x + Attention(x)); out = LN(h + GLU-FFN(h)).

Inputs. `attention_mask` is 0/1 visibility only (1 = a real token; a 0 anywhere hides that token and nothing
else). Packed rows — several documents back to back in one row — are the separate `segment_ids` (batch, seq):
1, 2, … per document of the row, 0 for padding; attention then stays inside each document and ALiBi distances
restart at each one. `position_ids` (batch, seq), optional, are the positions ALiBi measures distances between;
by default `positions_from_segments(segment_ids)` for packed rows, else 0 … seq−1 (a hole in the mask does not
restart them). See nn/packing.py.

Unpadding. The encoder runs on the real tokens only, gathered into a flat (1, capacity, hidden) row (see
nn/packing.py); attention re-pads q, k, v to (batch, seq, ...) and attends per row, masked with
`document_mask(attention_mask, segment_ids)`, so documents never see each other. The capacity is batch·seq
unless set with `packing.set_token_capacity(model, n)`: every per-token FLOP is then spent on n slots instead
of batch·seq. Outputs are re-padded: (batch, seq, ...) with zeros at padding.

Checkpoints. There is no MosaicBERT in `transformers`; this module reads and writes the state dict of the
MosaicBERT reference code (mosaicml/examples, `bert_layers.py`): `bert.embeddings.{word_embeddings,
token_type_embeddings,LayerNorm}`, `bert.encoder.layer.N.attention.self.Wqkv`, `…attention.output.{dense,
LayerNorm}`, `…mlp.{gated_layers,wo,layernorm}`, `cls.predictions.transform.{dense,LayerNorm}` and the
decoder bias `cls.predictions.decoder.bias` (the decoder weight is the word-embedding matrix; its tied copy
`cls.predictions.decoder.weight` is ignored when present). `config.json` says `"model_type": "mosaic_bert"`
and `"architectures": ["MosaicBertForMaskedLM"]` (or `"MosaicBertModel"`); the reference code's other keys
(`alibi_starting_size`, `max_position_embeddings`, …) are kept unchanged but not used: the ALiBi bias is
built for each input length, so any sequence length runs.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from minibert import losses
from minibert.config import PretrainedConfig
from minibert.models.base import PreTrainedModel
from minibert.models.heads import Pooler, select_masked
from minibert.models.outputs import ModelOutput
from minibert.nn.activations import activation
from minibert.nn.alibi import alibi_bias, alibi_slopes
from minibert.nn.attention import document_mask, dot_product_attention
from minibert.nn.embeddings import Embedding
from minibert.nn.feedforward import glu
from minibert.nn.linear import Linear
from minibert.nn.norms import LayerNorm
from minibert.nn.packing import Unpadded, check_capacity, default_positions, pack, repad, unpad
from minibert.nn.tied_decoder import TiedDecoder


@dataclasses.dataclass
class MosaicBertConfig(PretrainedConfig):
    """MosaicBERT-Base (Portes et al. 2023, §2.1): BERT-Base sizes, the vocabulary rounded up to a
    multiple of 8 (30522 → 30528), no attention dropout (the reference code's default), 30% masking."""

    model_type: ClassVar[str] = "mosaic_bert"

    vocab_size: int = 30528
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"                 # the MLM head's activation; the GLU always uses exact GELU
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.0
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    mlm_probability: float = 0.3             # §2.2: 30% of tokens are masked in pretraining

    @classmethod
    def claims(cls, values) -> bool:
        """Published MosaicBERT checkpoints say `"model_type": "bert"`; their `alibi_starting_size` (or an
        `auto_map` into the reference code's `bert_layers`) gives them away."""
        return "alibi_starting_size" in values or "bert_layers" in str(values.get("auto_map", ""))

    @classmethod
    def from_dict(cls, values):
        names = {"BertForMaskedLM": "MosaicBertForMaskedLM", "BertModel": "MosaicBertModel"}
        architectures = [names.get(a, a) for a in values.get("architectures") or []] or None
        return super().from_dict({**values, "architectures": architectures})

    def validate(self) -> None:
        super().validate()
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1), got {self.mlm_probability}")


class MosaicBertEmbeddings(nnx.Module):
    """E = Dropout(LayerNorm(word[ids] + token_type[types])), no position embeddings (§2.1, ALiBi):
    (..., tokens) ids → (..., tokens, hidden)."""

    def __init__(self, config: MosaicBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        table = dict(init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.word_embeddings = Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id, **table)
        self.token_type_embeddings = Embedding(c.type_vocab_size, c.hidden_size, **table)
        self.LayerNorm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, dtype=dtype)
        self.dropout = nnx.Dropout(c.hidden_dropout_prob, rngs=rngs)

    def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array) -> jax.Array:
        return self.dropout(self.LayerNorm(self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)))


class UnpaddedSelfAttention(nnx.Module):
    """Multi-head self-attention on unpadded tokens (reference `BertUnpadSelfAttention`).

    [Q | K | V] = x W_qkv + b on the (1, capacity, hidden) row; re-padded to (batch, seq, heads, head_dim)
    to attend per row with the ALiBi `bias` and the `mask`; the heads, concatenated, unpadded again:
    (1, capacity, hidden)."""

    def __init__(self, config: MosaicBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.num_heads = c.num_attention_heads
        self.attention_implementation = "reference"
        self.record_attention = False
        self.Wqkv = Linear(c.hidden_size, 3 * c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.dropout = nnx.Dropout(c.attention_probs_dropout_prob, rngs=rngs)

    def __call__(self, x: jax.Array, unpadded: Unpadded, mask: jax.Array, bias: jax.Array) -> jax.Array:
        qkv = repad(self.Wqkv(x), unpadded)                                       # (b, s, 3·h·d)
        qkv = qkv.reshape(*qkv.shape[:2], 3, self.num_heads, -1)                   # (b, s, 3, h, d)
        out = dot_product_attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2], bias, self.dropout, mask=mask,
                                    implementation=self.attention_implementation, recorder=self)  # (b, s, h, d)
        return pack(out.reshape(*out.shape[:2], -1), unpadded)


class MosaicBertSelfOutput(nnx.Module):
    """h = LayerNorm(x + Dropout(a W_O + b)): the attention sublayer's post-LN output, (1, capacity, hidden)."""

    def __init__(self, config: MosaicBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.dense = Linear(c.hidden_size, c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.LayerNorm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, dtype=dtype)
        self.dropout = nnx.Dropout(c.hidden_dropout_prob, rngs=rngs)

    def __call__(self, attended: jax.Array, x: jax.Array) -> jax.Array:
        return self.LayerNorm(x + self.dropout(self.dense(attended)))


class MosaicBertAttention(nnx.Module):
    """The attention sublayer: `self` (attention) then `output` (projection, residual, LayerNorm)."""

    def __init__(self, config: MosaicBertConfig, *, dtype, rngs: nnx.Rngs):
        self.self = UnpaddedSelfAttention(config, dtype=dtype, rngs=rngs)
        self.output = MosaicBertSelfOutput(config, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, unpadded: Unpadded, mask: jax.Array, bias: jax.Array) -> jax.Array:
        return self.output(self.self(x, unpadded, mask, bias), x)


class GatedLinearUnitMLP(nnx.Module):
    """out = LayerNorm(h + W_o·Dropout(GELU(h W) ⊗ h V) + b_o) (§2.1; Shazeer 2020 GeGLU): `gated_layers` is
    [W | V] without bias, GELU exact, the dropout before `wo` as in the reference code. (..., hidden)."""

    def __init__(self, config: MosaicBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        linear = dict(init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.gated_layers = Linear(c.hidden_size, 2 * c.intermediate_size, use_bias=False, **linear)
        self.act = activation("gelu")
        self.wo = Linear(c.intermediate_size, c.hidden_size, **linear)
        self.dropout = nnx.Dropout(c.hidden_dropout_prob, rngs=rngs)
        self.layernorm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, dtype=dtype)

    def __call__(self, h: jax.Array) -> jax.Array:
        return self.layernorm(h + self.wo(self.dropout(glu(self.gated_layers(h), self.act))))


class MosaicBertLayer(nnx.Module):
    """One post-LN layer on unpadded tokens: attention sublayer, then the GLU feed-forward sublayer."""

    def __init__(self, config: MosaicBertConfig, *, dtype, rngs: nnx.Rngs):
        self.attention = MosaicBertAttention(config, dtype=dtype, rngs=rngs)
        self.mlp = GatedLinearUnitMLP(config, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, unpadded: Unpadded, mask: jax.Array, bias: jax.Array) -> jax.Array:
        return self.mlp(self.attention(x, unpadded, mask, bias))


class MosaicBertEncoder(nnx.Module):
    """A stack of `num_hidden_layers` layers on the (1, capacity, hidden) row; returns every layer's input
    and output (the embeddings first)."""

    def __init__(self, config: MosaicBertConfig, *, dtype, rngs: nnx.Rngs):
        self.layer = nnx.List([MosaicBertLayer(config, dtype=dtype, rngs=rngs) for _ in range(config.num_hidden_layers)])

    def __call__(self, x: jax.Array, unpadded: Unpadded, mask: jax.Array, bias: jax.Array) -> list[jax.Array]:
        states = [x]
        for layer in self.layer:
            x = layer(x, unpadded, mask, bias)
            states.append(x)
        return states


class MosaicBertModel(PreTrainedModel):
    """The bare encoder: (batch, seq) ids → last_hidden_state (batch, seq, hidden), zeros at padding, and
    pooler_output (batch, hidden). `attention_mask` is 0/1; packed documents are `segment_ids` (and optionally
    `position_ids`), see the module docstring."""

    config_class = MosaicBertConfig
    is_base_model = True

    def __init__(self, config: MosaicBertConfig, *, add_pooling_layer: bool = True, dtype=jnp.float32,
                 rngs: nnx.Rngs | None = None):
        config.validate()
        rngs = rngs or nnx.Rngs(0)
        c = config
        self.config = config
        self.token_capacity: int | None = None     # static real-token budget of the unpadded row; None = batch·seq
        self.embeddings = MosaicBertEmbeddings(c, dtype=dtype, rngs=rngs)
        self.encoder = MosaicBertEncoder(c, dtype=dtype, rngs=rngs)
        self.pooler = (Pooler(c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
                       if add_pooling_layer else None)

    def check_inputs(self, input_ids, attention_mask, token_type_ids, *, segment_ids=None, position_ids=None) -> None:
        super().check_inputs(input_ids, attention_mask, token_type_ids, segment_ids=segment_ids,
                             position_ids=position_ids)
        check_capacity(attention_mask, self.token_capacity, segment_ids)

    def encode(self, input_ids, attention_mask, token_type_ids, segment_ids=None,
               position_ids=None) -> tuple[list[jax.Array], Unpadded]:
        """Unpad, embed and encode: every hidden state as a (1, capacity, hidden) row, and the layout."""
        ids, unpadded = unpad(input_ids, attention_mask, self.token_capacity, segment_ids)
        x = self.embeddings(ids, pack(token_type_ids, unpadded))
        positions = default_positions(segment_ids, input_ids.shape) if position_ids is None else position_ids
        bias = alibi_bias(alibi_slopes(self.config.num_attention_heads), positions)
        return self.encoder(x, unpadded, document_mask(attention_mask, segment_ids), bias), unpadded

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, segment_ids=None,
                position_ids=None):
        states, unpadded = self.encode(input_ids, attention_mask, token_type_ids, segment_ids, position_ids)
        last = repad(states[-1], unpadded)
        return ModelOutput(last_hidden_state=last,
                           pooler_output=None if self.pooler is None else self.pooler(last),
                           hidden_states=tuple(repad(s, unpadded) for s in states) if output_hidden_states else None)


class MosaicBertLMPredictionHead(nnx.Module):
    """logits = LayerNorm(act(h W + b)) Eᵀ + bias: `transform` then the tied `decoder` (LayerNorm eps 1e-12,
    fixed in the reference code). (..., hidden) → (..., vocab)."""

    def __init__(self, config: MosaicBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.transform = nnx.Dict(
            dense=Linear(c.hidden_size, c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs),
            LayerNorm=LayerNorm(c.hidden_size, eps=1e-12, dtype=dtype))
        self.act = activation(c.hidden_act)
        self.decoder = TiedDecoder(c.hidden_size, c.vocab_size, tied=True, dtype=dtype, rngs=rngs)  # own `bias`

    def __call__(self, h: jax.Array, word_embeddings: jax.Array) -> jax.Array:
        h = self.transform["LayerNorm"](self.act(self.transform["dense"](h)))
        return self.decoder(h, word_embeddings)


class MosaicBertForMaskedLM(PreTrainedModel):
    """MosaicBERT with the masked-LM head: logits (batch, seq, vocab), zeros at padding; loss = MLM
    cross-entropy given `labels` (-100 = not predicted). The head runs on the unpadded tokens only, or, given
    `masked_positions` (batch, n), on those positions only: logits (batch, n, vocab), `labels` (batch, n)."""

    config_class = MosaicBertConfig
    base_model_prefix = "bert"
    ignored_checkpoint_keys = (r"^cls\.predictions\.decoder\.weight$",)

    def __init__(self, config: MosaicBertConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        self.bert = MosaicBertModel(config, add_pooling_layer=False, dtype=dtype, rngs=rngs)
        self.cls = nnx.Dict(predictions=MosaicBertLMPredictionHead(config, dtype=dtype, rngs=rngs))

    def check_inputs(self, input_ids, attention_mask, token_type_ids, *, segment_ids=None, position_ids=None) -> None:
        self.bert.check_inputs(input_ids, attention_mask, token_type_ids, segment_ids=segment_ids,
                               position_ids=position_ids)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, segment_ids=None,
                position_ids=None, labels=None, masked_positions=None):
        states, unpadded = self.bert.encode(input_ids, attention_mask, token_type_ids, segment_ids, position_ids)
        last = repad(states[-1], unpadded)
        word_embeddings = self.bert.embeddings.word_embeddings.weight[...]
        if masked_positions is None:   # dense: the head on the unpadded tokens, re-padded
            logits = repad(self.cls["predictions"](states[-1], word_embeddings), unpadded)
        else:                          # sparse: the head on the masked positions only
            logits = self.cls["predictions"](select_masked(last, masked_positions, labels), word_embeddings)
        return ModelOutput(last_hidden_state=last,
                           hidden_states=tuple(repad(s, unpadded) for s in states) if output_hidden_states else None,
                           logits=logits,
                           loss=None if labels is None else losses.masked_lm_loss(logits, labels))
